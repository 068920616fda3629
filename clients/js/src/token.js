// The `exp` claim of a JWT (seconds since the epoch), or null when the token
// cannot be read. The client only reads it to refresh in time; the server
// verifies the token.
export function tokenExpiry(token) {
  try {
    const part = String(token).split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
    return typeof claims.exp === 'number' ? claims.exp : null;
  } catch {
    return null;
  }
}

// Seconds before `exp` at which to refresh: 30, or a tenth of the token's
// remaining life when that is shorter.
export function refreshLead(exp, nowSeconds, margin = 30) {
  return Math.min(margin, Math.max(0, (exp - nowSeconds) / 10));
}
