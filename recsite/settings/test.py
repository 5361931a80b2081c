"""Settings for the test suite: fast hashing, a SQLite file unless DATABASE_URL is set,
and a private Redis (started by the ``redis_url`` fixture)."""

import os

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("DATABASE_URL", "sqlite://:memory:")

from recommendations.engine.blend import PRODUCT_BLEND  # noqa: E402
from recommendations.engine.fm import PRODUCT_FM  # noqa: E402
from recsite.settings.base import *  # noqa: E402,F403
from recsite.settings.base import DATABASES, RECOMMENDATIONS, VAR_DIR  # noqa: E402

# Tests get a Redis of their own on a port chosen once per run and handed to any worker
# process they start; conftest's redis_url fixture starts the server there.
if not os.environ.get("RECSITE_TEST_REDIS_URL"):
    from recsite.redis_server import free_port

    os.environ["RECSITE_TEST_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
REDIS_URL = CELERY_BROKER_URL = CELERY_RESULT_BACKEND = os.environ["RECSITE_TEST_REDIS_URL"]
CELERY_TASK_ALWAYS_EAGER = False
RECOMMENDATIONS = {
    **RECOMMENDATIONS,
    "SHARDS": 2,
    "DEBOUNCE_SECONDS": 0.05,
    "RECOMPUTE_ON_WORKER_START": False,
    "LIVE_CACHE_SECONDS": 0,  # tests flip versions and read them back at once
    # Every user gets a stored list (the demo ratings' times are spread over years), so
    # the stored-list tests cover everyone; test_ready_active.py tests the selection.
    "READY_ACTIVE_DAYS": None,
    # The ranking model's weight tuning, lighter: tests check behaviour, not accuracy.
    "MODEL_BLEND": {**PRODUCT_BLEND, "rounds": 1, "cold_folds": 1, "als_iterations": 5},
    "RATING_FM": {**PRODUCT_FM, "n_iter": 12, "burn_in": 4, "keep_every": 2},
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so a real Celery worker process can share the test database.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}

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

# Tests rate and read back at once; test_selectors.py tests the kept ranking.
TOP_RATED_CACHE_SECONDS = 0

# --- API: throttling out of the way; its own tests set low rates with override_settings.
API_THROTTLE_RATES = {"anon": None, "user": None, "auth": None}
CACHES["api-throttle"]["LOCATION"] = REDIS_URL  # noqa: F405 - the test Redis
