"""Settings of the example project: a Django site that used Django Channels
for its notifications and now publishes to Switchboard (docs/backends.md).
Secrets come from the environment; the defaults are for a local try-out only."""

import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# The switchboard package from this repository (a real project vendors it or
# installs it like its other dependencies).
sys.path.insert(0, str(BASE_DIR.parent.parent / "clients" / "python"))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-django-secret-key-change-me-0123456789")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "notifications",
]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "campus.urls"
WSGI_APPLICATION = "campus.wsgi.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                         "NAME": os.environ.get("EXAMPLE_DB", str(BASE_DIR / "db.sqlite3"))}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

# --- Switchboard -------------------------------------------------------------
# The node's server API and the key it accepts (SWITCHBOARD_API_KEYS on the node).
SWITCHBOARD_URL = os.environ.get("SWITCHBOARD_URL", "http://127.0.0.1:8000")
SWITCHBOARD_API_KEY = os.environ.get("SWITCHBOARD_API_KEY",
                                     "example-only-api-key-change-me-0123456789")
# The node's auth.jwt_secret (SWITCHBOARD_JWT_SECRET on the node), to mint
# client tokens with switchboard.django.token_for(user).
SWITCHBOARD_JWT_SECRET = os.environ.get("SWITCHBOARD_JWT_SECRET",
                                        "example-only-jwt-secret-change-me-0123456789")
# The admin interface, for `manage.py websocket_monitor`.
SWITCHBOARD_ADMIN_URL = os.environ.get("SWITCHBOARD_ADMIN_URL", "http://127.0.0.1:8100")
SWITCHBOARD_ADMIN_TOKEN = os.environ.get("SWITCHBOARD_ADMIN_TOKEN",
                                         "example-only-admin-token-change-me-0123")

# Code that calls channel_layer.group_send keeps working: the layer publishes
# to the channel the group names (user_42 -> user:42, chat_lobby -> chat:lobby).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "switchboard.channels.SwitchboardChannelLayer",
        "CONFIG": {
            "url": SWITCHBOARD_URL,
            "api_key": SWITCHBOARD_API_KEY,
            # Groups beyond the built-in ones (docs/backends.md).
            "groups": {"course_{id}": "course:{id}"},
            # The consumer's handler was send_notification; browsers saw "notification".
            "types": {"send_notification": "notification"},
        },
    },
}
