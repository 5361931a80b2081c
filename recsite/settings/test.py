"""Settings for the test suite: fast hashing, in-memory SQLite unless DATABASE_URL is set."""

import os

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("DATABASE_URL", "sqlite://:memory:")

from recsite.settings.base import *  # noqa: E402,F403

ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
# Tests never run collectstatic; WhiteNoise serves from the finders instead.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True

# --- API: throttling out of the way; its own tests set low rates with override_settings.
API_THROTTLE_RATES = {"anon": None, "user": None, "auth": None}
