import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")

application = get_wsgi_application()

# Import every view now (the first request would), then leave everything loading made out
# of the garbage collector's sweeps: a full sweep of the ~120k objects Django, DRF, numpy
# and numba leave behind took 42 ms, a stall that landed on one request in a few hundred.
get_resolver().url_patterns  # noqa: B018 - evaluated for its imports
gc.freeze()
