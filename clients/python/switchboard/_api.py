"""The server API's calls (docs/server-api.md), written once for both
clients: each method builds a Call and hands it to the client's `_run`,
which returns the result (Client) or a coroutine of it (AsyncClient)."""

from dataclasses import dataclass
from typing import List, Optional

from ._transport import Call, idempotency_key as checked_key

# Per-channel broadcast errors that another attempt cannot change.
_FINAL_ERRORS = {"not_found", "forbidden", "rate_limited", "bad_request"}


@dataclass(frozen=True)
class Published:
    channel: str
    event_id: int
    epoch: str


@dataclass(frozen=True)
class BroadcastResult:
    """One channel of a broadcast: its event_id, or the server's error code."""

    channel: str
    event_id: Optional[int] = None
    error: Optional[str] = None

    @property
    def ok(self):
        return self.error is None


@dataclass(frozen=True)
class History:
    channel: str
    epoch: str
    events: List[dict]
    has_more: bool


@dataclass(frozen=True)
class PresenceUser:
    user_id: object
    username: str
    connections: int


@dataclass(frozen=True)
class ChannelInfo:
    channel: str
    owner: str
    replicas: List[str]
    epoch: str
    last_event_id: int


def _event_body(event_type, data):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TypeError(f"data must be a dict (a JSON object), not {type(data).__name__}")
    return {"type": event_type, "data": data}


def _broadcast_results(j):
    return [BroadcastResult(r["channel"], r.get("event_id"), r.get("error"))
            for r in j["results"]]


def _broadcast_retryable(j):
    return any(r.get("error") and r["error"] not in _FINAL_ERRORS for r in j["results"])


class ApiMethods:
    """publish, broadcast, history, presence, channel, disconnect, health."""

    def publish(self, channel, type, data=None, *, idempotency_key=None):
        """Stores one event in `channel` and returns Published(channel,
        event_id, epoch) once it is durable. Every attempt of the call sends
        the same idempotency key (a fresh one unless given), so a retry never
        stores the event twice. Pass your own key (an order id, a row id) to
        make retries across processes single too."""
        body = {"channel": channel, **_event_body(type, data)}
        return self._run(Call("POST", "/api/publish", body=body,
                              idempotency_key=checked_key(idempotency_key),
                              result=lambda j: Published(j["channel"], j["event_id"],
                                                         j["epoch"])))

    def broadcast(self, channels, type, data=None, *, idempotency_key=None):
        """The same event into each of `channels`: a list of BroadcastResult
        in the order given. A channel whose owner was unavailable is retried
        (the whole call, same key: the others are not stored again); what is
        still failed after the retries comes back with its `error` code."""
        body = {"channels": list(channels), **_event_body(type, data)}
        return self._run(Call("POST", "/api/broadcast", body=body,
                              idempotency_key=checked_key(idempotency_key),
                              result=_broadcast_results, retry_when=_broadcast_retryable))

    def history(self, channel, *, since=None, before=None, limit=None):
        """History(channel, epoch, events, has_more): events after `since`
        or before `before` (at most `limit`, server default 50, max 500)."""
        return self._run(Call("GET", "/api/history",
                              query={"channel": channel, "since": since, "before": before,
                                     "limit": limit},
                              result=lambda j: History(j["channel"], j["epoch"], j["events"],
                                                       j["has_more"])))

    def presence(self, channel):
        """The users present in `channel`, cluster-wide: [PresenceUser]."""
        return self._run(Call("GET", "/api/presence", query={"channel": channel},
                              result=lambda j: [PresenceUser(u["user_id"], u["username"],
                                                             u["connections"])
                                                for u in j["users"]]))

    def channel(self, channel):
        """Where `channel` lives: ChannelInfo(owner, replicas, epoch, last_event_id)."""
        return self._run(Call("GET", "/api/channel", query={"channel": channel},
                              result=lambda j: ChannelInfo(j["channel"], j["owner"],
                                                           j["replicas"], j["epoch"],
                                                           j["last_event_id"])))

    def disconnect(self, user_id):
        """Closes every socket of `user_id` on every node (4005); returns how many."""
        return self._run(Call("POST", "/api/disconnect", body={"user_id": user_id},
                              result=lambda j: j["disconnected"]))

    def health(self):
        """GET /health as a dict (needs no key)."""
        return self._run(Call("GET", "/health"))


class AdminMethods:
    """The admin interface (docs/admin.md), as sbctl uses it: every answer is
    the node's JSON as a dict."""

    def cluster(self):
        return self._run(Call("GET", "/admin/cluster"))

    def channels(self, prefix=None):
        return self._run(Call("GET", "/admin/channels", query={"prefix": prefix}))

    def channel(self, name, limit=None):
        return self._run(Call("GET", "/admin/channel", query={"name": name, "limit": limit}))

    def users(self):
        return self._run(Call("GET", "/admin/users"))

    def user(self, user_id):
        return self._run(Call("GET", "/admin/user", query={"id": user_id}))

    def connections(self, user=None, channel=None, sort=None, limit=None):
        return self._run(Call("GET", "/admin/connections",
                              query={"user": user, "channel": channel, "sort": sort,
                                     "limit": limit}))

    def kick(self, user_id):
        return self._run(Call("POST", "/admin/kick", body={"user_id": user_id}))

    def drain(self, node):
        return self._run(Call("POST", "/admin/drain", body={"node": node}))
