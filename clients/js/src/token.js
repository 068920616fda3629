// What the client reads from a JWT (it never verifies one: the server does).

function claimsOf(token) {
  try {
    const part = String(token).split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
  } catch {
    return {};
  }
}

// The `exp` claim (seconds since the epoch), or null.
export function tokenExpiry(token) {
  const { exp } = claimsOf(token);
  return typeof exp === 'number' ? exp : null;
}

// Milliseconds from now until a token just obtained should be refreshed:
// `margin` seconds before it expires, or a tenth of its life if that is
// shorter; null without `exp`. When this machine's clock is evidently off
// (the token looks expired already, or issued in the future) the token's
// own life (`exp - iat`) stands in for the time left, so a skewed clock
// cannot make the client refresh in a loop. Never less than a second.
export function refreshDelay(token, nowSeconds, margin = 30) {
  const { exp, iat } = claimsOf(token);
  if (typeof exp !== 'number') return null;
  let left = exp - nowSeconds;
  if (typeof iat === 'number' && iat < exp && (left <= 0 || iat > nowSeconds + 5)) left = exp - iat;
  const lead = Math.min(margin, Math.max(0, left / 10));
  return Math.max(1000, Math.round((left - lead) * 1000));
}
