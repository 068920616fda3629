"""Client tokens (HS256 JWTs) with the claims Switchboard checks, shaped like
the access tokens Django SimpleJWT issues: `token_type` "access", `exp`,
`iat`, `jti` and `user_id`. A site that already hands SimpleJWT access tokens
to its browsers can give the same token to Switchboard when both use one
signing key; otherwise mint one here with the node's `auth.jwt_secret`."""

import base64
import hashlib
import hmac
import json
import time
import uuid

from .errors import SwitchboardError

# SimpleJWT's ACCESS_TOKEN_LIFETIME default.
DEFAULT_LIFETIME = 300


class InvalidToken(SwitchboardError):
    """decode(): a token that is malformed, badly signed or expired."""


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(secret):
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def mint(user_id, *, secret, lifetime=DEFAULT_LIFETIME, name=None, role=None, channels=None,
         claims=None, now=None):
    """A signed access token for `user_id` (an int or a string, kept as
    given: the server echoes it in the same JSON type).

    lifetime: seconds until `exp` (a datetime.timedelta works too). name,
    role: the display name and role the server reads. channels: channel
    names or prefix patterns ending in `*` ("chat:42", "session:*") that the
    token grants. claims: any further claims."""
    if isinstance(user_id, bool) or not isinstance(user_id, (int, str)) or user_id == "":
        raise ValueError("user_id must be an int or a non-empty string")
    if not secret:
        raise ValueError("a secret is required")
    if hasattr(lifetime, "total_seconds"):
        lifetime = lifetime.total_seconds()
    iat = int(time.time() if now is None else now)
    body = {"token_type": "access", "exp": iat + int(lifetime), "iat": iat,
            "jti": uuid.uuid4().hex, "user_id": user_id}
    for claim, value in (("name", name), ("role", role)):
        if value is not None:
            body[claim] = value
    if channels is not None:
        body["channels"] = list(channels)
    body.update(claims or {})
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    signing_input = f"{head}.{payload}".encode("ascii")
    return f"{head}.{payload}.{_b64(hmac.new(_key(secret), signing_input, hashlib.sha256).digest())}"


def decode(token, *, secret, now=None):
    """The claims of a token signed with `secret` (HS256), checked as the
    server checks them: signature, `exp` in the future, `nbf` passed,
    `token_type` "access" when present, a user id in `user_id` or `sub`."""
    try:
        head, payload, sig = token.split(".")
        header = json.loads(_unb64(head))
        claims = json.loads(_unb64(payload))
        given = _unb64(sig)
    except (ValueError, AttributeError) as e:
        raise InvalidToken(f"not a JWT: {e}") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        raise InvalidToken("only HS256 tokens with a JSON object body are accepted")
    want = hmac.new(_key(secret), f"{head}.{payload}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(want, given):
        raise InvalidToken("bad signature")
    t = time.time() if now is None else now
    if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] <= t:
        raise InvalidToken("expired or without exp")
    if isinstance(claims.get("nbf"), (int, float)) and claims["nbf"] > t:
        raise InvalidToken("not valid yet (nbf)")
    if claims.get("token_type", "access") != "access":
        raise InvalidToken("token_type must be access")
    if claims.get("user_id", claims.get("sub")) in (None, ""):
        raise InvalidToken("no user id (user_id or sub)")
    return claims
