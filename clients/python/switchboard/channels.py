"""A Django Channels layer that hands group_send to Switchboard, so code
written against Channels (`async_to_sync(channel_layer.group_send)(group,
message)`) publishes to Switchboard unchanged:

    CHANNEL_LAYERS = {"default": {
        "BACKEND": "switchboard.channels.SwitchboardChannelLayer",
        "CONFIG": {"url": "http://127.0.0.1:8000", "api_key": "..."}}}

The group names the channel (user_42 -> user:42, see DEFAULT_GROUPS; more
patterns in CONFIG["groups"]), the message's `type` the event type (renamed
through CONFIG["types"] if given) and its other fields the event's `data`.
Switchboard delivers to the WebSocket clients itself: there are no consumers,
so what only a consumer does (send to or receive from a consumer channel,
group_add, group_discard, new_channel) raises NoConsumers."""

import asyncio
import functools
import json
import re

from channels.layers import BaseChannelLayer
from django.core.serializers.json import DjangoJSONEncoder

from .client import Client
from .django import DEFAULT_URL, client_options, setting
from .errors import SwitchboardError

# Django Channels group -> Switchboard channel, as the seed apps name them.
DEFAULT_GROUPS = {
    "user_{id}": "user:{id}",
    "role_{role}": "role:{role}",
    "chat_{room}": "chat:{room}",
    "session_{id}": "session:{id}",
    "dashboard": "dashboard",
    "leaderboard": "leaderboard",
}

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class NoConsumers(SwitchboardError, NotImplementedError):
    """An operation that needs a consumer in this process: with Switchboard
    the WebSocket consumers are gone (docs/backends.md)."""


class UnmappedGroup(SwitchboardError, ValueError):
    """A group that no pattern maps to a Switchboard channel."""


class GroupMap:
    """Group name patterns with {placeholders}, tried in order (a dict keeps
    its order)."""

    def __init__(self, patterns):
        self.rules = []
        for group, channel in patterns.items():
            names = _PLACEHOLDER.findall(group)
            if set(_PLACEHOLDER.findall(channel)) - set(names):
                raise ValueError(f"channel pattern {channel!r} uses a placeholder that "
                                 f"group pattern {group!r} does not have")
            regex, pos = "", 0
            for m in _PLACEHOLDER.finditer(group):
                regex += re.escape(group[pos:m.start()]) + f"(?P<{m.group(1)}>[A-Za-z0-9_.-]+?)"
                pos = m.end()
            self.rules.append((re.compile(regex + re.escape(group[pos:]) + r"\Z"), channel))

    def channel(self, group):
        for regex, channel in self.rules:
            m = regex.match(group)
            if m:
                return _PLACEHOLDER.sub(lambda p: m.group(p.group(1)), channel)
        raise UnmappedGroup(f"group {group!r} maps to no Switchboard channel: add a pattern to "
                            f"CHANNEL_LAYERS CONFIG['groups'], e.g. "
                            f"{{'course_{{id}}': 'course:{{id}}'}}")


def _no_consumers(what):
    raise NoConsumers(f"{what} needs a consumer in this process, and with Switchboard there "
                      f"are none: the node delivers to the WebSocket clients itself. Delete "
                      f"the consumer (its routes move to the node's config); keep group_send "
                      f"(docs/backends.md)")


class SwitchboardChannelLayer(BaseChannelLayer):
    """The channel layer backend. CONFIG: url, api_key (default
    SWITCHBOARD_URL, SWITCHBOARD_API_KEY), groups (extra patterns, tried
    before DEFAULT_GROUPS), types (message type -> event type), timeout,
    retries."""

    extensions = ["groups", "flush"]

    def __init__(self, url=None, api_key=None, groups=None, types=None, timeout=None,
                 retries=None, expiry=60, capacity=100, channel_capacity=None):
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        self.client = Client(url or setting("SWITCHBOARD_URL", DEFAULT_URL),
                             api_key or setting("SWITCHBOARD_API_KEY", required=True),
                             **client_options(timeout, retries))
        groups = dict(groups or {})
        self.groups = GroupMap({**groups, **{g: c for g, c in DEFAULT_GROUPS.items()
                                             if g not in groups}})
        self.types = dict(types or {})

    def event_of(self, message):
        """(type, data) of the event a group message becomes."""
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise ValueError("a group message must be a dict with a string 'type'")
        data = {k: v for k, v in message.items() if k != "type"}
        data = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
        return self.types.get(message["type"], message["type"]), data

    async def group_send(self, group, message):
        """Publishes the message to the group's channel; returns Published
        once the event is durable. The blocking client runs in a worker
        thread: it works from any event loop (async_to_sync makes a new one
        per call) and keeps its connections alive across calls."""
        self.valid_group_name(group)
        channel = self.groups.channel(group)
        event_type, data = self.event_of(message)
        publish = functools.partial(self.client.publish, channel, event_type, data)
        return await asyncio.get_running_loop().run_in_executor(None, publish)

    async def send(self, channel, message):
        _no_consumers(f"send({channel!r}) to a consumer channel")

    async def receive(self, channel):
        _no_consumers(f"receive({channel!r})")

    async def new_channel(self, prefix="specific."):
        _no_consumers("new_channel() (a consumer's own channel)")

    async def group_add(self, group, channel):
        _no_consumers(f"group_add({group!r}, {channel!r}) (a consumer joining a group)")

    async def group_discard(self, group, channel):
        _no_consumers(f"group_discard({group!r}, {channel!r}) (a consumer leaving a group)")

    async def flush(self):
        """Nothing is buffered here: every group_send is durable when it returns."""

    async def close(self):
        self.client.close()
