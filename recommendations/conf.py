"""Settings of the recommendations pipeline, with defaults; read lazily, never at import.

Override any of them with a ``RECOMMENDATIONS`` dict in the Django settings.
"""

from django.conf import settings

from recommendations.engine.blend import PRODUCT_BLEND
from recommendations.engine.fm import PRODUCT_FM

DEFAULTS = {
    # Neighbour lists (what the evaluation on MovieLens 100k chose; see the engine).
    "ITEM_K": 20,  # item-item lists for ranking and "also liked" (cosine on BM25 weights)
    "USER_K": 50,  # user-user lists for "people like you" (cosine on BM25 weights)
    # Item-item pearson_baseline lists kept for predicted ratings. Long lists matter: on
    # ml100k-folds, item KNNBaseline from stored top-50 lists scores RMSE 0.9452, from
    # top-200 0.9225, from full lists 0.9187 (bench/README.md).
    "PREDICT_K": 200,
    "PREDICT_SHRINKAGE": 100.0,
    "USER_WEIGHT": 0.7,  # share of the user-user part in the top-N blend
    # The one threshold for "personal": below this many ratings the home page asks for
    # ratings (onboarding), and panels and the API serve popular items instead.
    "MIN_RATINGS_FOR_PERSONAL": 3,
    # Privacy: a reason quotes an aggregate over other people (an average, a count of
    # people who rated both) only when it covers at least this many (see reasons.py).
    "REASON_MIN_PEOPLE": 3,
    # Each user's top-N list is stored ready to serve, this long. A request for more than
    # fits (after skipping items deactivated since) is computed live instead.
    "READY_LIST_LENGTH": 30,
    # Stored lists are a cache of the live computation: the recompute stores them only for
    # users active within READY_ACTIVE_DAYS (who rated, logged in, or had their list
    # computed on read), the READY_MAX_USERS most recently active of them (0: no cap).
    # Anyone else's list is computed on their first read and kept for the version.
    "READY_ACTIVE_DAYS": 30,
    "READY_MAX_USERS": 20_000,
    # The recompute.
    # Row ranges per kind; each is one Celery task. User-user: ranges of equal pair work
    # for the symmetric pass, then as many merge tasks.
    "SHARDS": 4,
    # A crashed worker's lock lapses after this long unextended. The prepare step and each
    # running shard extend it every third of this (a heartbeat thread), so it need not
    # exceed the longest step, only the gaps between steps (queueing: seconds).
    "LOCK_TTL_SECONDS": 300,
    "BUILD_TTL_SECONDS": 3 * 3600,  # an unpublished version's keys expire after this
    "OLD_VERSION_GRACE_SECONDS": 120,  # must exceed LIVE_CACHE_SECONDS
    "LIVE_CACHE_SECONDS": 1.0,  # how long a web process reuses the live pointer it read
    "SNAPSHOT_DIR": "",  # shared folder for the ratings snapshot; empty: keep it in Redis
    # Without SNAPSHOT_DIR: Redis holds the snapshot in chunks this big, and each machine
    # copies it once to this folder (empty: var/snapshot-cache) for its processes to map.
    "SNAPSHOT_CHUNK_BYTES": 64 * 1024 * 1024,
    "SNAPSHOT_CACHE_DIR": "",
    # Soft and hard limits of each recompute task (prepare, shard, merge, publish). At 25M
    # ratings the longest is estimated at a few hundred seconds on 2 shared cores (README,
    # "Full recompute"); 1900 leaves a margin of 4x or more, and stays below the Redis
    # broker's visibility timeout (3600 s), past which an unacknowledged task is redelivered.
    "TASK_SOFT_TIME_LIMIT": 1800,
    "TASK_TIME_LIMIT": 1900,
    "RECOMPUTE_ON_WORKER_START": True,  # publish a first model when a worker finds none
    # The ranking model (recommendations/model_scoring.py): the engine's self-tuning blend
    # (EASE, ALS, content, popularity), fitted by each full recompute, ranks the stored and
    # live personal lists; off, lists come from neighbour counting alone.
    "MODEL": True,
    # Users with at least this many ratings get a model list (the blend's "few" segment
    # serves those with few; it can serve from 1). None: MIN_RATINGS_FOR_PERSONAL, the one
    # threshold the onboarding strip, the profile and the notes name; below it users get
    # the first list from their genres and 4-5 ratings (cold_start).
    "MODEL_MIN_RATINGS": None,
    # Keyword arguments for the engine's Blend: the configuration `make evaluate` measures
    # as the product default (engine.blend.PRODUCT_BLEND). Among them, EASE's dense
    # inverse covers the `ease_max_items` most-rated items (memory: ~3 x n^2 float64 while
    # fitting: 5,000 items ~0.6 GB), each keeping its `ease_keep` largest weights.
    "MODEL_BLEND": PRODUCT_BLEND,
    # The blend's weight tuning (most of the model stage's cost) runs at most this often;
    # recomputes in between refit the components with the last tuned weights. 0: always.
    "MODEL_RETUNE_HOURS": 24.0,
    # The weight tuning fits the blend's components several times over (its validation
    # splits); on more ratings than this it tunes on a random sample of whole users holding
    # about this many, then fits once on every rating with the weights found. 0: no cap.
    "MODEL_TUNE_MAX_RATINGS": 1_000_000,
    # ... and scores at most this many (validation user, item) cells per block: its
    # validation users per split are cut to this over the number of items (each block is
    # 4 bytes a cell, float32: 2,000 users x 12k items = 96 MB, one per part and segment
    # held at once). 0: no cap.
    "MODEL_TUNE_MAX_CELLS": 24_000_000,
    # The rating model (recommendations/rating_model.py): a Bayesian factorization machine
    # fitted by each full recompute (its own task) serves predicted ratings; off, or for a
    # version without one, they come from the pearson_baseline neighbour lists.
    "RATING_MODEL": True,
    # Keyword arguments for the engine's BayesianFM: what `make evaluate` measures as the
    # ml100k-folds product default (engine.fm.PRODUCT_FM, evaluate's fm-product).
    "RATING_FM": PRODUCT_FM,
    # The fm stage's chain is cut so that its Gibbs sweeps x ratings stay within this
    # (never below 20 sweeps; rating_model.scaled_sweeps): 100 sweeps up to 6M ratings,
    # 60 at 10M, 24 at 25M, so the stage's cost stops growing with the ratings (about
    # 0.45 CPU us a rating-sweep; bench/README, "The fm stage at scale"). 0: no cut.
    "RATING_FM_SWEEP_RATINGS": 600_000_000,
    # A recompute whose live version has a rating model starts the chain from that model's
    # final state (new users and items at their group's mean) and runs this shorter chain
    # (keys of RATING_FM replaced); still cut by RATING_FM_SWEEP_RATINGS. Measured against
    # a cold chain: bench/README, "Warm starts". {}: every chain starts cold.
    "RATING_FM_WARM": {"n_iter": 20, "burn_in": 4, "keep_every": 4},
    # The incremental update after a rating. It is queued at once (no countdown): ratings
    # of a user that arrive while their update waits in the queue join it anyway.
    "DEBOUNCE_SECONDS": 0.0,
    # Each worker process keeps the item sums of items with at least this many raters once
    # computed, up to this many MiB, and patches them per rating (see incremental.py). The
    # rows of such an item whose sums are not kept are left out of the rating's task, to a
    # coalesced task of their own (tasks.item_rows_refresh).
    "UPDATE_KEPT_SUMS_MB": 128,
    # A new worker process loads the live version for its updates as it starts (a thread).
    "UPDATE_WARM_ON_START": True,
    "UPDATE_KEPT_SUMS_MIN_RATERS": 1000,
    # Redis.
    "KEY_PREFIX": "rec",
    "REDIS_CONNECT_TIMEOUT": 0.5,
    "REDIS_TIMEOUT": 2.0,
}


def get(name: str):
    overrides = getattr(settings, "RECOMMENDATIONS", {})
    if name not in DEFAULTS:
        raise KeyError(f"unknown recommendations setting {name!r}")
    return overrides.get(name, DEFAULTS[name])
