"""Settings for every environment, read from environment variables.

``recsite.settings.test`` layers the test suite's choices on top. Production runs with
``DEBUG`` off and must be given ``SECRET_KEY`` (and usually ``ALLOWED_HOSTS``,
``DATABASE_URL`` and ``REDIS_URL``).
"""

from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from recsite.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("RECSITE_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    # Only ever used with DEBUG on, on a developer's machine.
    SECRET_KEY = "insecure-development-key-never-used-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "accounts",
    "catalog",
    "recommendations",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
]

MIDDLEWARE = [
    # First, so it sees every response: nothing under /api/ leaves as HTML.
    "recsite.security.ApiJsonErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # django-csp's, with the policy built once (not on every response).
    "recsite.security.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "recsite.security.DatabaseBusyMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "recsite.urls"
WSGI_APPLICATION = "recsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    # The default: a SQLite file in the project's var/ folder, made on first use.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASE_URL = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
# How long a write waits for another's lock before the request gives up with a 503.
DB_LOCK_TIMEOUT_SECONDS = env_int("DB_LOCK_TIMEOUT_SECONDS", 20, minimum=1)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while a worker or an import writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": DB_LOCK_TIMEOUT_SECONDS,
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Without it a write queued behind a long lock waits for ever; with it, a 503.
    _pg_options = DATABASES["default"].setdefault("OPTIONS", {})
    _pg_options["options"] = (
        f"{_pg_options.get('options', '')} -c lock_timeout={DB_LOCK_TIMEOUT_SECONDS * 1000}"
    ).strip()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-in lockout (django-axes): after LOGIN_FAILURE_LIMIT failures for one account, or
# from one client address (recsite.security.client_address, so NUM_PROXIES applies), sign-in
# is refused for LOGIN_LOCKOUT_MINUTES, even with the right password, on the login page,
# the admin's and the API's token endpoint alike. Staff unlock early in the admin
# (Axes > Access attempts: delete the row).
AUTHENTICATION_BACKENDS = [
    "recsite.security.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "recsite.security.client_address"
AXES_USERNAME_CALLABLE = "recsite.security.lockout_username"
AXES_LOCKOUT_CALLABLE = "recsite.security.lockout_response"
# Not reset by a success: an attacker signing in to their own account between guesses
# would clear the counts against the account under attack. Counts lapse after the cool-off.
AXES_RESET_ON_SUCCESS = False
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# Email (password reset links): printed to the console with DEBUG on, sent over SMTP
# otherwise, configured from the environment.
EMAIL_BACKEND = (
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
if EMAIL_PORT > 65535:
    raise ImproperlyConfigured(f"EMAIL_PORT={EMAIL_PORT} is not a port (1-65535)")
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Recsite <noreply@localhost>")
if "@" not in parseaddr(DEFAULT_FROM_EMAIL)[1] or any(c in DEFAULT_FROM_EMAIL for c in "\r\n"):
    raise ImproperlyConfigured(
        f"DEFAULT_FROM_EMAIL={DEFAULT_FROM_EMAIL!r} is not an address like "
        "'Recsite <noreply@example.com>'"
    )
SERVER_EMAIL = DEFAULT_FROM_EMAIL

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Redis: Celery's broker and the store the pages read recommendations from.
REDIS_URL = env_str("REDIS_URL") or "redis://127.0.0.1:6390/0"
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(
        f"REDIS_URL={REDIS_URL!r} must start with redis://, rediss:// or unix://"
    )

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or REDIS_URL
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_BEAT_SCHEDULE = {
    "recompute-neighbours": {
        "task": "recommendations.tasks.scheduled_recompute",
        # Incremental updates keep panels fresh between full recomputes.
        "schedule": env_int("RECOMPUTE_INTERVAL_SECONDS", 3600, minimum=60),
    },
    # A Redis that restarted empty gets a model again within a minute, not an hour.
    "model-watch": {
        "task": "recommendations.tasks.model_watch",
        "schedule": env_int("MODEL_WATCH_SECONDS", 60, minimum=5),
    },
}
# Knobs of the recommendations pipeline; defaults and meanings in recommendations/conf.py.
RECOMMENDATIONS = {
    "SHARDS": env_int("RECOMPUTE_SHARDS", 4, minimum=1),
    "SNAPSHOT_DIR": env_str("RECOMPUTE_SNAPSHOT_DIR", ""),
    "LOCK_TTL_SECONDS": env_int("RECOMPUTE_LOCK_TTL_SECONDS", 300, minimum=1),
    "TASK_TIME_LIMIT": env_int("RECOMPUTE_TIME_LIMIT_SECONDS", 1900, minimum=1),
    "TASK_SOFT_TIME_LIMIT": max(1, env_int("RECOMPUTE_TIME_LIMIT_SECONDS", 1900) * 19 // 20),
    "RECOMPUTE_ON_WORKER_START": env_bool("RECOMPUTE_ON_WORKER_START", True),
    "MIN_RATINGS_FOR_PERSONAL": env_int("MIN_RATINGS_FOR_PERSONAL", 3, minimum=1),
    "REASON_MIN_PEOPLE": env_int("REASON_MIN_PEOPLE", 3, minimum=2),
}

# Security: strict by default whenever DEBUG is off; each can be relaxed from the
# environment (for example behind a TLS-terminating proxy, or a loopback load test).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp; Django 5.2 has none of its own): scripts only from
# our own static files, so no inline script or handler runs; nothing from other hosts.
# Style attributes are allowed (they cannot run script; the SVG sprite uses one). The API
# docs widen styles, images and workers on their own views only (recsite/api/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Permissions-Policy (django-permissions-policy): no page needs any of these powerful
# features, so none may be used, by us or by anything framed.
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer", "autoplay", "camera", "display-capture", "encrypted-media",
        "fullscreen", "geolocation", "gyroscope", "magnetometer", "microphone", "midi",
        "payment", "picture-in-picture", "publickey-credentials-get", "screen-wake-lock",
        "usb", "xr-spatial-tracking",
    )
}  # fmt: skip

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- API: Django REST Framework, drf-spectacular, throttling ---
# Rates are "<number>/<second|minute|hour|day>" (DRF's format) or "off"; a bad value fails here.
_THROTTLE_RATE = r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$"


def _throttle_rate(name: str, default: str) -> str | None:
    import re

    value = (env_str(name) or default).strip().lower()
    if value in {"off", "none"}:
        return None
    if not re.match(_THROTTLE_RATE, value):
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate like 100/min, or off")
    return value


API_THROTTLE_RATES = {
    "anon": _throttle_rate("API_THROTTLE_ANON", "120/min"),
    "user": _throttle_rate("API_THROTTLE_USER", "1200/min"),
    # Registration and token requests, per client address: slows password guessing.
    "auth": _throttle_rate("API_THROTTLE_AUTH", "20/min"),
}
# Throttle counters in Redis, shared by every web worker (recsite/api/throttling.py).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    **globals().get("CACHES", {}),
    "api-throttle": {
        # Django's, with one Redis client per connection pool (recsite/api/throttling.py).
        "BACKEND": "recsite.api.throttling.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "api-throttle",
        "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
    },
}
# Proxies in front of the site that append to X-Forwarded-For. 0 (the default): the client
# is the socket's peer and the header is ignored, since anyone can send it. Throttles and
# the login lockout key on this address (recsite.security.client_address).
NUM_PROXIES = env_int("NUM_PROXIES", 0, minimum=0)
# How old the best-rated ranking (items/top-rated/, the catalogue page's list, the
# panels' fallback) may be, per web process: ranking the catalogue by damped mean is a
# pass over every item (17 ms at 25M ratings). 0: ranked at every call.
TOP_RATED_CACHE_SECONDS = env_int("TOP_RATED_CACHE_SECONDS", 30, minimum=0)
API_PAGE_SIZE = env_int("API_PAGE_SIZE", 20, minimum=1)
API_MAX_PAGE_SIZE = env_int("API_MAX_PAGE_SIZE", 100, minimum=1)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header turns "not signed in" into a 401.
        "recsite.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_THROTTLE_CLASSES": [
        "recsite.api.throttling.AnonThrottle",
        "recsite.api.throttling.UserThrottle",
    ],
    "DEFAULT_PAGINATION_CLASS": "recsite.api.pagination.PageNumberPagination",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["recsite.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "recsite.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "recsite.api.errors.exception_handler",
    "NUM_PROXIES": NUM_PROXIES,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Recsite API",
    "DESCRIPTION": "Catalogue, ratings and collaborative-filtering recommendations. "
    "Sign in with `POST /api/v1/auth/token/` and send `Authorization: Token <token>`; "
    "the site's own pages use their session instead. Every error is "
    '`{"error": {"status", "code", "message", "fields"}}`.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "ServiceStateEnum": ["ok", "down"],
        "RecommendationSourceEnum": ["personal", "popular", "content"],  # reads.SOURCES
        "PredictionSourceEnum": ["neighbours", "baseline", "unavailable"],
    },
}
