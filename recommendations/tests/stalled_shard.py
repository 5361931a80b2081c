"""Imported by a test's worker (worker_settings.py), never by the suite itself: every
recompute shard waits for its task's soft time limit, catches it and raises another
exception that keeps no trace of it, as numba's compiler did when the limit landed inside a
compile ("no compiled object yet for <Library '_q_c'>").

A shard's first step is loading the version's state (or, for the model fits, its snapshot
alone), so that is what stalls.
"""

import time

from celery.exceptions import SoftTimeLimitExceeded

from recommendations import pipeline


def _stalled_model_state(version: str):
    try:
        while True:
            time.sleep(0.05)
    except SoftTimeLimitExceeded:
        pass  # raised below, outside the handler: no __context__ points at the limit
    raise RuntimeError("no compiled object yet for <Library 'stalled'>")


pipeline.model_state = pipeline._snapshot_alone = _stalled_model_state
