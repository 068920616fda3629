"""Typed exceptions: every failure of a call is a SwitchboardError.

An answer from the server with an error status becomes an APIError subclass
chosen by the HTTP status, carrying the server's error code (the `error` field
of its JSON body, e.g. "bad_request") and message. A call that got no answer
at all (refused, reset, timed out) after its retries is a TransportError.
"""


class SwitchboardError(Exception):
    """Base class of everything this package raises."""


class TransportError(SwitchboardError):
    """No answer from the server: connection refused, reset or timed out, on
    every attempt. `attempts` is how many were made."""

    def __init__(self, message, attempts=1):
        super().__init__(message)
        self.attempts = attempts


class APIError(SwitchboardError):
    """The server answered with an error status."""

    status = None

    def __init__(self, status, code, message, body=None):
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body


class BadRequest(APIError):
    """400: the request was refused as malformed (the message says why)."""


class Unauthorized(APIError):
    """401: missing or wrong API key (or admin token)."""


class Forbidden(APIError):
    """403"""


class NotFound(APIError):
    """404: no such path, channel, user or node."""


class MethodNotAllowed(APIError):
    """405"""


class RateLimited(APIError):
    """429"""


class Unavailable(APIError):
    """503: the node (or the channel's owner) could not answer now; retried."""


_BY_STATUS = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound,
              405: MethodNotAllowed, 429: RateLimited, 503: Unavailable}


def api_error(status, code, message, body=None):
    """The exception for an error answer."""
    return _BY_STATUS.get(status, APIError)(status, code, message, body)
