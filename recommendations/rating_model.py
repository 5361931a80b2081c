"""The product's rating model: the engine's :class:`~.engine.fm.BayesianFM` (a Bayesian
factorization machine), fitted by the full recompute, stored as its kept samples, and
asked for one user's predicted rating of one item from their *live* ratings.

The recompute's ``fm`` stage (:func:`fit_and_store`, its own task beside the ranking
model's) fits ``RATING_FM`` (the engine's ``PRODUCT_FM``: ids, the user's rated-item set,
the item's raters, genres and 5-year release bins; the product has no demographics) on
the snapshot's ratings and the catalogue's genres and years. What a prediction needs is
kept with the version as an array set (``store.snapshot_put(part="fm")``: chunks in Redis
or a folder, mapped read-only, one copy per machine): ``BayesianFM.parts`` (per kept
sample the item parts, the rated-item set's weights, the item side's genre and year
weights, the priors; float32 where big), ``item_ids`` (int64, the model's columns) and
``config`` (JSON as uint8).

:meth:`RatingParts.predict` folds the user's live ratings in (one (k+1)-sized solve per
kept sample), so a new rating moves the prediction at once and a user the fit never saw
gets one too; an item the fit never saw gets its part from its genres and year. The
explanation names the user's rated items whose interaction term with the item
(``BayesianFM.item_links``) adds most to the prediction.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recommendations import model_scoring, store
from recommendations.conf import get as option
from recommendations.engine.fm import BayesianFM
from recommendations.engine.matrix import RatingMatrix, _index_of

# Sources of a prediction from this model (reads.PredictedRating.source).
FACTORIZATION = "factorization"  # an item the model was fitted with
GENRES = "genres"  # an item with no ratings when it was fitted: its genres and year


def enabled() -> bool:
    """Whether the recompute fits the rating model and predicted ratings come from it."""
    return bool(option("RATING_MODEL"))


# -- fitting (the recompute's fm stage) ------------------------------------------------------
def fit_parts(arrays: dict, *, info, warm: dict | None = None) -> dict[str, np.ndarray]:
    """``RATING_FM`` fitted on a snapshot's ratings (``build.snapshot_arrays``' CSR arrays
    and id maps) and ``info`` (``ItemInfo`` of at least the snapshot's items), as the
    arrays the module docstring lists, with the chain's final state (``chain_*``).

    ``warm``: a previous version's parts (:func:`warm_state` decides whether they can
    start this chain): the chain starts from their state and runs ``RATING_FM_WARM``'s
    shorter chain."""
    item_ids = np.asarray(arrays["item_ids"], dtype=np.int64)
    user_ids = np.asarray(arrays["user_ids"], dtype=np.int64)
    csr = sp.csr_matrix(
        (
            np.asarray(arrays["data"], dtype=np.float64),
            np.asarray(arrays["indices"]),
            np.asarray(arrays["indptr"]),
        ),
        shape=(user_ids.size, item_ids.size),
    )
    started = time.process_time()
    params = dict(option("RATING_FM"))
    state = warm_state(warm, params, csr.nnz) if warm is not None else None
    if state is not None:
        params.update(option("RATING_FM_WARM"))
    params = scaled_sweeps(params, csr.nnz, int(option("RATING_FM_SWEEP_RATINGS")))
    fm = BayesianFM(**params, clip=(0.5, 5.0)).fit(
        RatingMatrix(csr, user_ids, item_ids), items=info, warm=state
    )
    parts, config = fm.parts()
    chain, config["chain"] = fm.chain_state()
    config["warm"] = state is not None
    config["n_ratings"] = int(csr.nnz)
    config["fit_cpu_seconds"] = round(time.process_time() - started, 3)
    return {
        **parts,
        **chain,
        "item_ids": item_ids,
        "config": np.frombuffer(json.dumps(config).encode(), dtype=np.uint8),
    }


# What must match for a previous version's chain to start this one: the features and
# their number of factors (the chain's length may differ).
_SAME_MODEL = ("factors", "implicit", "item_raters", "genres", "years", "demographics")


# A warm start's short burn-in assumes most ratings are those the previous chain saw: a
# previous chain on fewer than this share of today's ratings (a large import since) does
# not start the next.
WARM_MIN_SHARE = 0.8


def warm_state(parts: dict, params: dict, n_ratings: int) -> tuple[dict, dict] | None:
    """The chain state (``BayesianFM.chain_state``) in a version's stored ``parts``, or
    None when they have none (stored before it was kept), warm starts are off
    (``RATING_FM_WARM`` empty), the model's features differ from ``params``' or the
    chain saw fewer than ``WARM_MIN_SHARE`` of ``n_ratings`` (today's ratings)."""
    if not option("RATING_FM_WARM"):
        return None
    config = json.loads(bytes(np.asarray(parts["config"])).decode())
    defaults = BayesianFM().__dict__
    same = all(
        config["params"].get(name) == params.get(name, defaults[name]) for name in _SAME_MODEL
    )
    seen = config.get("n_ratings", 0) >= WARM_MIN_SHARE * n_ratings
    if "chain" not in config or not same or not seen:
        return None
    return {name: parts[name] for name in parts if name.startswith("chain_")}, config["chain"]


# Fewest sweeps a scaled chain keeps (bench/README: 20-24 sweeps cost +0.004-0.005 held-out
# RMSE at synthetic 1M against 100).
MIN_SWEEPS = 20


def scaled_sweeps(params: dict, n_ratings: int, sweep_ratings: int) -> dict:
    """``params`` (BayesianFM's) with the chain cut so that sweeps x ratings stays within
    ``sweep_ratings`` (0: no cut), never below ``MIN_SWEEPS`` sweeps: the burn-in scaled
    by the same factor and the thinning widened so no more samples are kept than before.

    A sweep's cost is linear in the ratings, so the fm stage's cost stops growing with
    them. Measured, a shorter chain on every rating loses less than the full chain on a
    sample of users of the same cost (bench/README, "The fm stage at scale").
    """
    n_iter = int(params.get("n_iter", BayesianFM().n_iter))
    if not sweep_ratings or n_ratings * n_iter <= sweep_ratings:
        return dict(params)
    burn_in = int(params.get("burn_in", BayesianFM().burn_in))
    keep_every = int(params.get("keep_every", BayesianFM().keep_every))
    kept = len(range(burn_in, n_iter, keep_every))
    sweeps = max(MIN_SWEEPS, sweep_ratings // max(n_ratings, 1))
    if sweeps >= n_iter:
        return dict(params)
    burn = min(sweeps - 1, round(burn_in * sweeps / n_iter))
    every = max(1, -(-(sweeps - burn) // kept))  # ceil: at most the kept samples before
    return {**params, "n_iter": sweeps, "burn_in": burn, "keep_every": every}


def fit_and_store(version: str, arrays: dict, *, ttl: int | None) -> int:
    """The recompute's fm stage: fit on ``arrays`` (the version's snapshot) and the
    catalogue's genres and years, starting from the live version's chain where it has
    one (:func:`fit_parts`' ``warm``), store the parts with the version. Returns the
    number of kept samples."""
    from recommendations.item_info import catalogue_item_info

    parts = fit_parts(arrays, info=catalogue_item_info(active_only=False), warm=_live_parts())
    store.snapshot_put(version, parts, ttl=ttl, part="fm")
    store.mark_written(version, "fm", 1, ttl=ttl)
    return int(parts["w0_samples"].size)


def _live_parts() -> dict | None:
    """The live version's stored parts (mapped), or None: no live version, none stored,
    or Redis unreadable (then the chain starts cold, as the first recompute's)."""
    try:
        live = store.live_model()
        return store.snapshot_get(live.version, part="fm") if live is not None else None
    except (LookupError, *store.RedisUnavailable):
        return None


# -- one user's prediction from the stored parts ---------------------------------------------
@dataclass(frozen=True)
class Prediction:
    value: float
    source: str  # FACTORIZATION or GENRES
    links: list[tuple[int, float]]  # (rated item id, stars its interaction adds), best first


class RatingParts:
    """The stored parts of one version's rating model, mapped read-only."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.config = json.loads(bytes(np.asarray(arrays["config"])).decode())
        self.item_ids = arrays["item_ids"]
        self.fm = BayesianFM.from_parts(arrays, self.config)

    def predict(
        self, rated_ids, scores, item_id: int, *, genres=(), year=None, n_links: int = 5
    ) -> Prediction:
        """The user's predicted rating of ``item_id`` from their live ratings (item ids,
        scores; items the model has no column for are left out), and up to ``n_links`` of
        their rated items whose interaction with it is positive (ties: lower id first).

        ``genres`` (names) and ``year`` describe the item when it has no column."""
        idx = _index_of(self.item_ids, np.asarray(rated_ids, dtype=np.int64))
        keep = idx >= 0
        cols = idx[keep]
        vals = np.asarray(scores, dtype=np.float64)[keep]
        target = int(_index_of(self.item_ids, np.array([item_id]))[0])
        if target >= 0:
            part = np.asarray(self.fm.item_samples_[:, target : target + 1], dtype=np.float64)
            source = FACTORIZATION
        else:
            year = np.nan if year is None else float(year)
            part = self.fm.cold_item_parts([list(genres)], [year])
            source = GENRES
        # One BLAS thread: (k+1)-sized solves gain nothing from more, and their threads
        # only fight (as in model_scoring.ModelParts.score)
        with model_scoring._blas().limit(limits=1, user_api="blas"):
            state = self.fm.fold_in(cols, vals)
            value = float(self.fm.predict_folded(state, None, item_parts=part)[0])
            strength = self.fm.item_links(cols, part[:, 0])
        ids = np.asarray(self.item_ids[cols], dtype=np.int64)
        pos = np.flatnonzero(strength > 0)
        order = np.lexsort((ids[pos], -strength[pos]))[:n_links]
        links = [(int(ids[pos[o]]), float(strength[pos[o]])) for o in order]
        return Prediction(value, source, links)


def parts_for(version: str) -> RatingParts | None:
    """This process's parts of ``version`` (mapped from the store once); None when the
    model is off or the version has none (then predictions come from the neighbours).

    Raises one of ``store.RedisUnavailable`` when Redis cannot be read.
    """
    return _parts(version) if enabled() else None


@functools.lru_cache(maxsize=1)  # the live version's; a new version replaces it
def _parts(version: str) -> RatingParts | None:
    try:
        return RatingParts(store.snapshot_get(version, part="fm"))
    except LookupError:
        return None


def parts_clear() -> None:
    """Forget the parts this process holds (tests)."""
    _parts.cache_clear()
