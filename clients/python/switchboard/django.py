"""Django helpers: one shared Client built from the settings, and the
seed apps' helpers, each one publish.

Settings: SWITCHBOARD_URL (default http://127.0.0.1:8000), SWITCHBOARD_API_KEY
(required), SWITCHBOARD_TIMEOUT (seconds per attempt, default 10),
SWITCHBOARD_RETRIES (default 4); SWITCHBOARD_JWT_SECRET for token_for();
SWITCHBOARD_ADMIN_URL and SWITCHBOARD_ADMIN_TOKEN for admin_client()."""

import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from . import tokens
from .client import AdminClient, Client

DEFAULT_URL = "http://127.0.0.1:8000"

_lock = threading.Lock()
_client = None


def setting(name, default=None, required=False):
    value = getattr(settings, name, default)
    if required and not value:
        raise ImproperlyConfigured(f"{name} must be set to use Switchboard (docs/backends.md)")
    return value


def client_options(timeout=None, retries=None):
    return {"timeout": float(timeout if timeout is not None else
                             setting("SWITCHBOARD_TIMEOUT", 10.0)),
            "retries": int(retries if retries is not None else setting("SWITCHBOARD_RETRIES", 4))}


def get_client():
    """The process's Client for SWITCHBOARD_URL and SWITCHBOARD_API_KEY
    (thread-safe; rebuilt when those settings change, as in tests)."""
    global _client
    with _lock:
        if _client is None:
            _client = Client(setting("SWITCHBOARD_URL", DEFAULT_URL),
                             setting("SWITCHBOARD_API_KEY", required=True), **client_options())
        return _client


def _forget_client(**kwargs):
    global _client
    if kwargs["setting"].startswith("SWITCHBOARD_"):
        with _lock:
            old, _client = _client, None
        if old is not None:
            old.close()


setting_changed.connect(_forget_client)


def admin_client():
    """An AdminClient for SWITCHBOARD_ADMIN_URL and SWITCHBOARD_ADMIN_TOKEN."""
    return AdminClient(setting("SWITCHBOARD_ADMIN_URL", "http://127.0.0.1:8100"),
                       setting("SWITCHBOARD_ADMIN_TOKEN", required=True), **client_options())


def notify_user(user_id, type, data=None, **kw):
    """An event for one user (channel user:{id}: /ws/notifications/ and /ws/updates/)."""
    return get_client().publish(f"user:{user_id}", type, data, **kw)


def broadcast_to_role(role, type, data=None, **kw):
    """An event for every user with `role` (channel role:{role}, /ws/updates/)."""
    return get_client().publish(f"role:{role}", type, data, **kw)


def notify_dashboard(type, data=None, **kw):
    """An event on the staff dashboard (channel dashboard, /ws/dashboard/)."""
    return get_client().publish("dashboard", type, data, **kw)


def update_leaderboard(data, type="leaderboard_update", **kw):
    """A leaderboard update (channel leaderboard, /ws/leaderboard/)."""
    return get_client().publish("leaderboard", type, data, **kw)


def token_for(user, *, role=None, channels=None, lifetime=None, name=None):
    """A client token for a Django user, signed with SWITCHBOARD_JWT_SECRET
    (the node's auth.jwt_secret): user_id is user.pk, name the username."""
    secret = setting("SWITCHBOARD_JWT_SECRET", required=True)
    return tokens.mint(user.pk, secret=secret, name=name or user.get_username(), role=role,
                       channels=channels,
                       lifetime=lifetime if lifetime is not None else tokens.DEFAULT_LIFETIME)
