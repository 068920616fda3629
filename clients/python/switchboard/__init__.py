"""Switchboard's Python client (standard library only).

    from switchboard import Client
    sb = Client("http://127.0.0.1:8000", api_key)
    sb.publish("user:42", "notification", {"title": "Assignment graded"})

Client / AsyncClient: the server API (docs/server-api.md); AdminClient /
AsyncAdminClient: the admin interface (docs/admin.md); switchboard.tokens:
client tokens; switchboard.channels: a Django Channels layer;
switchboard.django: notify_user and friends for Django projects.
"""

from . import tokens
from ._api import BroadcastResult, ChannelInfo, History, PresenceUser, Published
from .aio import AsyncAdminClient, AsyncClient
from .client import AdminClient, Client
from .errors import (APIError, BadRequest, Forbidden, MethodNotAllowed, NotFound, RateLimited,
                     SwitchboardError, TransportError, Unauthorized, Unavailable)

__all__ = [
    "Client", "AsyncClient", "AdminClient", "AsyncAdminClient",
    "Published", "BroadcastResult", "History", "PresenceUser", "ChannelInfo",
    "SwitchboardError", "TransportError", "APIError", "BadRequest", "Unauthorized",
    "Forbidden", "NotFound", "MethodNotAllowed", "RateLimited", "Unavailable",
]
