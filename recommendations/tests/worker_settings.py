"""Settings for a test's Celery worker whose recompute shards stall until their soft time
limit, then raise another exception (test_worker.py): the test settings, plus the module
that makes them stall, and no warm-up thread (it would load a version the same way)."""

from recsite.settings.test import *  # noqa: F403
from recsite.settings.test import RECOMMENDATIONS

CELERY_IMPORTS = ["recommendations.tests.stalled_shard"]
RECOMMENDATIONS = {**RECOMMENDATIONS, "UPDATE_WARM_ON_START": False}
