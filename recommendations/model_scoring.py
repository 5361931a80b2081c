"""The product's ranking model: the engine's self-tuning :class:`~.engine.blend.Blend`,
fitted by the full recompute, stored as compact parts, scored for one user from them.

The recompute's ``model`` stage (:func:`fit_and_store`) fits the blend on the snapshot's
ratings with the catalogue's side information (``item_info``). Its columns are the
snapshot's items *and* every active item without ratings, so a new item is a candidate
and enters personal lists through the blend's content parts. What scoring one user
needs is kept with the version as an array set (``store.snapshot_put(part="model")``:
chunks in Redis or a folder, mapped read-only, one copy per machine), float32 where it
is big:

=================  ==========================================================================
``item_ids``       int64 (n_items,) the model's columns (database ids, sorted)
``warm``           bool (n_items,) items that had ratings when it was fitted
``ease_*``         EASE weights as CSR (n_items, n_items), each row pruned to its
                   ``ease_keep`` (or ``ease_budget`` / head) largest weights by magnitude
                   (``MODEL_BLEND``; the dense head of ``ease_max_items`` squared would
                   not fit a worker)
``als_items``      float32 (n_items, factors) ALS item factors; ``als_gram`` their Gram
``mapped``         float32 (n_items, factors) item factors predicted from content
``content_*``      TF-IDF rows as CSR float32 (n_items, n_tokens), unit norm
``pop``            float32 (n_items,) the blend's popularity part
``corated_*``      loved co-occurrence as CSR (n_items, n_items), rows pruned as fitted
                   (``engine.cooccur``; the few segment's main part)
``als_few_items``  float32 (n_items, factors) the heavily regularised ALS's item factors
                   and ``als_few_gram`` their Gram (only when the weights use ``als_few``)
``trend``          float32 (n_items,) the trend part as of the snapshot's last day (only
                   when the weights use it; ``engine.trend``: a user is scored "now")
``config``         JSON (uint8): weights per segment, validation NDCG, hyper-parameters
=================  ==========================================================================

:meth:`ModelParts.score` recomputes a user's blended scores from their *live* ratings:
the ALS user factors are one small solve, the EASE row one sparse product of the user's
row with B, content one profile product. The stored lists (``build.compute_ready``), the
live path and the update after a rating all call it through ``ranking.rank``, so a
rating shows at once and a stored list equals the live computation. It reproduces
``Blend.score`` (same components, same per-user standardisation over every column,
same segment weights) except that B is pruned (a test checks equality with no pruning).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recommendations import store
from recommendations.conf import get as option
from recommendations.engine.blend import Blend, floor_slots, new_item_place
from recommendations.engine.content import ItemContent
from recommendations.engine.ease import weighted_rows
from recommendations.engine.factors import ALS, preference_weights
from recommendations.engine.matrix import RatingMatrix, _index_of

logger = logging.getLogger(__name__)

# A reason names the user's own item only when they rated it at least this (reasons.LIKED).
_LIKED = 4.0


def enabled() -> bool:
    """Whether the recompute fits the ranking model and personal lists use it."""
    return bool(option("MODEL"))


def wants_times() -> bool:
    """Whether the snapshot carries rating times (``build.snapshot_ratings``): whenever
    the model is fitted. The blend's few segment is tuned on validation users' *first*
    ratings, as evaluate tunes it and as a new user has them (without times it keeps
    random ones), and its trend part (``trend_tau``) needs them."""
    return enabled()


# -- fitting (the recompute's model stage) --------------------------------------------------
def fit_parts(
    arrays: dict,
    *,
    info,
    active_ids: np.ndarray,
    weights: dict | None = None,
    few_floor: int = 0,
) -> dict[str, np.ndarray]:
    """The blend fitted on a snapshot's ratings, as the arrays the module docstring lists.

    Args:
        arrays: ``build.snapshot_arrays``' CSR arrays and id maps.
        info: ``ItemInfo`` of (at least) every item of the snapshot and ``active_ids``.
        active_ids: int64 the catalogue's active items (unrated ones become columns).
        weights: segment -> component -> weight from an earlier tuning: when given, the
            blend's weight tuning (most of its cost) is skipped and these are used.
        few_floor: the coverage floor tuned with those ``weights``.
    """
    snap_items = np.asarray(arrays["item_ids"], dtype=np.int64)
    item_ids = np.union1d(snap_items, np.asarray(active_ids, dtype=np.int64))
    n_users = int(np.asarray(arrays["user_ids"]).size)
    # (memory: the columns int32 as the CSR keeps them; an int64 array of every rating's
    # column, alive through the whole fit, was 200 MB at 25M)
    cols = np.searchsorted(item_ids, snap_items).astype(np.int32)[np.asarray(arrays["indices"])]
    csr = sp.csr_matrix(
        (np.asarray(arrays["data"], dtype=np.float64), cols, np.asarray(arrays["indptr"])),
        shape=(n_users, item_ids.size),
    )
    del cols
    matrix = RatingMatrix(csr, np.asarray(arrays["user_ids"], dtype=np.int64), item_ids)
    times = arrays.get("times")  # (only when the snapshot has them: ``wants_times``)
    params = dict(option("MODEL_BLEND"))
    started = time.monotonic()
    tuned = weights is None
    validation = None
    sample = tuning_sample(matrix, int(option("MODEL_TUNE_MAX_RATINGS") or 0))
    if tuned:
        params["max_val_users"] = validation_users(params, item_ids.size)
    if tuned and sample is not matrix:
        # only the weights: the tuner's own final fit on the sample would be thrown away
        tuner = Blend(**params).fit(
            sample, items=info, components=False, timestamps=_sample_times(matrix, sample, times)
        )
        weights, validation = tuner.weights_, tuner.validation_
        few_floor = tuner.few_floor_
        del tuner
    if weights is not None:  # (weights found earlier keep the floor found with them)
        params["few_floor"] = few_floor
    # (memory: the model's parts are fitted one after another, nothing of the tuning kept)
    # (with ``weights`` from the tuning above or an earlier one the times only reach the
    # trend part; without, this fit tunes on first ratings as the tuner does)
    blend = Blend(**params).fit(matrix, items=info, weights=weights, timestamps=times)
    if validation is not None:
        blend.validation_ = validation
    parts = blend.parts_
    corated = (
        parts.corated.weights_
        if parts.corated is not None
        else sp.csr_matrix((item_ids.size, item_ids.size))
    )
    # the keep EASE pruned to (``ease_budget`` may have raised it above ``ease_keep``)
    keep = getattr(parts.ease, "keep_", blend.ease_keep)
    ease = _pruned(parts.ease, item_ids.size, keep)
    y = np.ascontiguousarray(parts.als.item_factors_, dtype=np.float32)
    features = sp.csr_matrix(parts.content.features_, dtype=np.float32)
    mapped = parts.mapped if parts.mapped is not None else np.zeros_like(y)
    extra = {}
    if parts.als_few is not None:  # the few segment's heavily regularised ALS
        y_few = np.ascontiguousarray(parts.als_few.item_factors_, dtype=np.float32)
        extra["als_few_items"] = y_few
        extra["als_few_gram"] = y_few.astype(np.float64).T @ y_few.astype(np.float64)
    if parts.trend is not None:  # the few segment's trend, as of the snapshot's last day
        extra["trend"] = np.asarray(parts.trend.reference_, dtype=np.float32)
    config = {
        "weights": blend.weights_,
        "validation": blend.validation_,
        "tuned": tuned,
        "tuned_on_ratings": int(sample.nnz) if tuned else None,
        "validation_users": params["max_val_users"] if tuned else None,
        "few_max": blend.few_max,
        "few_floor": int(blend.few_floor_),
        "few_new_at": int(blend.few_new_at),
        "als": {
            "factors": int(y.shape[1]),
            "regularization": blend.als_reg,
            "alpha": blend.als_alpha,
            "weighting": parts.als.weighting,
        },
        "als_few": None
        if parts.als_few is None
        else {
            "factors": int(parts.als_few.factors),
            "regularization": parts.als_few.regularization,
            "alpha": parts.als_few.alpha,
            "weighting": parts.als_few.weighting,
        },
        "content_weighting": parts.content.weighting,
        "ease_weighting": blend.ease_weighting,
        "ease_keep": int(keep),
        "fit_seconds": round(time.monotonic() - started, 3),
    }
    return {
        "item_ids": item_ids,
        "warm": np.asarray(parts.warm, dtype=bool),
        "ease_indptr": ease.indptr.astype(np.int64),
        "ease_indices": ease.indices.astype(np.int32),
        "ease_data": ease.data.astype(np.float32),
        "als_items": y,
        # from the stored float32 factors, so every scorer solves the same system
        "als_gram": y.astype(np.float64).T @ y.astype(np.float64),
        "mapped": np.ascontiguousarray(mapped, dtype=np.float32),
        "content_indptr": features.indptr.astype(np.int64),
        "content_indices": features.indices.astype(np.int32),
        "content_data": features.data.astype(np.float32),
        "content_shape": np.array(features.shape, dtype=np.int64),
        "pop": np.asarray(parts.pop, dtype=np.float32),
        "corated_indptr": corated.indptr.astype(np.int64),
        "corated_indices": corated.indices.astype(np.int32),
        "corated_data": corated.data.astype(np.float32),
        "config": np.frombuffer(json.dumps(config).encode(), dtype=np.uint8),
    } | extra


def _sample_times(matrix: RatingMatrix, sample: RatingMatrix, times):
    """``times`` (aligned with ``matrix``'s CSR data) of ``tuning_sample``'s users, aligned
    with ``sample``'s; None without times."""
    if times is None:
        return None
    rows = np.searchsorted(matrix.user_ids, sample.user_ids)
    starts, ends = matrix.csr.indptr[rows], matrix.csr.indptr[rows + 1]
    return np.concatenate([np.asarray(times[a:b]) for a, b in zip(starts, ends, strict=True)])


def validation_users(params: dict, n_items: int) -> int:
    """The blend's ``max_val_users`` (users per validation split) for a catalogue of
    ``n_items`` columns: at most ``MODEL_TUNE_MAX_CELLS // n_items``, so the tuning's dense
    (users x items) validation blocks stay the same size on a bigger catalogue (0: no
    cap). At 10.9k columns the default keeps the blend's 2,000; at 62k it allows 387."""
    users = int(params.get("max_val_users", Blend().max_val_users))
    cells = int(option("MODEL_TUNE_MAX_CELLS") or 0)
    return max(1, min(users, cells // max(n_items, 1))) if cells else users


def tuning_sample(matrix: RatingMatrix, max_ratings: int) -> RatingMatrix:
    """``matrix`` itself when it holds at most ``max_ratings`` ratings (or no cap, 0), else
    the rows of whole users drawn at random (seed 0) until about ``max_ratings``, over the
    same columns: the tuning's cost stays that of ``max_ratings`` at any size."""
    if not max_ratings or matrix.nnz <= max_ratings:
        return matrix
    order = np.random.default_rng(0).permutation(matrix.n_users)
    lengths = np.diff(matrix.csr.indptr)[order]
    keep = np.sort(order[: max(1, int(np.searchsorted(np.cumsum(lengths), max_ratings)))])
    return RatingMatrix(matrix.csr[keep], matrix.user_ids[keep], matrix.item_ids)


def _pruned(ease, n_items: int, k: int) -> sp.csr_matrix:
    """EASE's learned weights as CSR (n_items, n_items) in the model's item space, each
    row (a rated item's weights onto the others) keeping its ``k`` largest by magnitude
    (``k`` <= 0: all of them)."""
    if ease is None:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    if sp.issparse(ease.weights_):  # TopKEASE: already in the item space
        head, w = np.arange(n_items), ease.weights_.toarray()
    else:
        head, w = ease.items_, ease.weights_
    h = w.shape[0]
    if 0 < k < h and np.count_nonzero(w, axis=1).max(initial=0) > k:
        keep = np.argpartition(-np.abs(w), k - 1, axis=1)[:, :k]
        rows = np.repeat(np.arange(h), k)
        cols = keep.ravel()
        del keep
    elif 0 < k < h:
        # every row already holds at most k weights (EASE pruned them with the same k):
        # its non-zeros are the k largest by magnitude and the zeros are dropped below
        # anyway, without two more (h x h) blocks for the partition
        rows, cols = np.nonzero(w)
    else:
        rows, cols = np.nonzero(np.ones_like(w, dtype=bool))
    vals = w[rows, cols]
    nz = vals != 0
    out = sp.csr_matrix(
        (vals[nz], (head[rows[nz]], head[cols[nz]])), shape=(n_items, n_items), dtype=np.float64
    )
    out.sort_indices()
    return out


def fit_and_store(version: str, arrays: dict, *, ttl: int | None) -> int:
    """The recompute's model stage: fit on ``arrays`` (the version's snapshot) and the
    catalogue, store the parts with the version. Returns the number of model columns.

    The blend's weights are tuned at most every ``MODEL_RETUNE_HOURS`` (kept in Redis
    beside the versions); in between, each recompute refits only the components.
    """
    from catalog.models import Item
    from recommendations.item_info import catalogue_item_info

    active = np.fromiter(
        Item.objects.filter(is_active=True).values_list("pk", flat=True), dtype=np.int64
    )
    info = catalogue_item_info(active_only=False)
    tuning = store.model_tuning()
    hours = option("MODEL_RETUNE_HOURS")
    fresh = tuning is not None and time.time() - tuning["tuned_at"] < hours * 3600
    weights = tuning["weights"] if fresh else None
    few_floor = tuning.get("few_floor", 0) if fresh else 0
    parts = fit_parts(arrays, info=info, active_ids=active, weights=weights, few_floor=few_floor)
    if weights is None:
        config = json.loads(bytes(parts["config"]).decode())
        tuned = {"weights": config["weights"], "few_floor": config["few_floor"]}
        store.model_tuning_put(tuned | {"tuned_at": time.time()})
    store.snapshot_put(version, parts, ttl=ttl, part="model")
    store.mark_written(version, "model", 1, ttl=ttl)
    return int(parts["item_ids"].size)


# -- scoring one user from the stored parts -------------------------------------------------
@dataclass(frozen=True, eq=False)
class UserScores:
    """One user's blended scores over the model's columns, and what explains them."""

    parts: ModelParts
    row: sp.csr_matrix  # (1, n_items) the user's live ratings in the model's space
    scores: np.ndarray  # float64 (n_items,)

    @property
    def item_ids(self) -> np.ndarray:
        return self.parts.item_ids

    def item_indices(self, ids) -> np.ndarray:
        return self.parts.columns(ids)

    def explain(self, top: np.ndarray, n_reasons: int) -> tuple[list[np.ndarray], np.ndarray]:
        """For each of ``top`` (model indices): the user's items behind it (model indices,
        strongest first, at most ``n_reasons``) and its reason code (``store.REASON_*``).

        An item with ratings: for a user whose weights use the loved co-occurrence (the
        few segment), the rated items whose raters loved it (:meth:`ModelParts.loved_links`,
        "Loved by people who rated X"); else the rated items whose learned EASE weight
        onto it is positive, else the items rated ``_LIKED`` or more whose content is
        closest. An item without ratings: the liked items with the closest content ("New,
        similar to X"). Ties: lower id first.
        """
        p = self.parts
        rated, scores = self.row.indices, self.row.data
        liked = rated[scores >= _LIKED]
        links = p.links(rated, top)
        loved = p.loved_links(rated, top)
        cos = (p.features[liked] @ p.features[top].T).toarray() if liked.size else None
        out, codes = [], np.full(top.size, store.REASON_EVIDENCE, dtype=np.int8)
        for t, j in enumerate(top.tolist()):
            if p.warm[j] and (loved[:, t] > 0).any():
                who, strength = rated, loved[:, t]
                codes[t] = store.REASON_LOVED
            elif p.warm[j] and (links[:, t] > 0).any():
                who, strength = rated, links[:, t]
            elif cos is not None and (cos[:, t] > 0).any():
                who, strength = liked, cos[:, t]
                if not p.warm[j]:
                    codes[t] = store.REASON_NEW
            else:
                out.append(np.empty(0, np.int64))
                continue
            pos = np.flatnonzero(strength > 0)
            order = np.lexsort((who[pos], -strength[pos]))[:n_reasons]
            out.append(who[pos][order].astype(np.int64))
        return out, codes


class ModelParts:
    """The stored parts of one version's model, mapped read-only, ready to score users."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.config = json.loads(bytes(np.asarray(arrays["config"])).decode())
        self.item_ids = arrays["item_ids"]
        self.warm = np.asarray(arrays["warm"], dtype=bool)
        n = self.item_ids.size
        self.ease = _csr(arrays, "ease", (n, n))
        self.corated = (
            _csr(arrays, "corated", (n, n))
            if "corated_data" in arrays
            else sp.csr_matrix((n, n), dtype=np.float32)
        )
        self.features = _csr(arrays, "content", tuple(arrays["content_shape"].tolist()))
        self.als = _stored_als(self.config["als"], arrays, "als_items", "als_gram")
        self.als_few = None
        if self.config.get("als_few") and "als_few_items" in arrays:
            self.als_few = _stored_als(
                self.config["als_few"], arrays, "als_few_items", "als_few_gram"
            )
        self.mapped = arrays["mapped"]
        self.content = ItemContent(weighting=self.config["content_weighting"])
        self.content.features_ = self.features
        self.pop = np.asarray(arrays["pop"], dtype=np.float64)
        self.trend = np.asarray(arrays["trend"], dtype=np.float64) if "trend" in arrays else None

    @property
    def n_items(self) -> int:
        return int(self.item_ids.size)

    def columns(self, ids) -> np.ndarray:
        """int64 the model column of each of the item ``ids`` (-1: not a column), as
        ``_index_of(item_ids, ids)`` gives it, by a table indexed by id (built once): a
        first read maps every rating of the user's neighbours, up to ~200k at 25M, which
        a binary search over the columns took 2-9 ms to do."""
        table = self.column_table
        ids = np.asarray(ids)
        if table is None or ids.dtype.kind not in "iu":
            return _index_of(self.item_ids, ids)
        if not ids.size:
            return np.empty(ids.shape, dtype=np.int64)
        if ids.min() >= 0 and ids.max() < table.size:
            return table[ids]
        inside = (ids >= 0) & (ids < table.size)
        out = np.full(ids.shape, -1, dtype=np.int64)
        out[inside] = table[ids[inside]]
        return out

    @functools.cached_property
    def column_table(self) -> np.ndarray | None:
        """int64 (largest id + 1,) id -> column (-1: none); None when the ids are too
        sparse for a table to be small (then ``columns`` searches). Built once."""
        ids = np.asarray(self.item_ids, dtype=np.int64)
        top = int(ids[-1]) if ids.size else -1
        if not (ids.size and ids[0] >= 0 and top < 8 * ids.size + (1 << 20)):
            return None
        table = np.full(top + 1, -1, dtype=np.int64)
        table[ids] = np.arange(ids.size)
        return table

    def user_row(self, rated_ids: np.ndarray, scores: np.ndarray) -> sp.csr_matrix:
        """(1, n_items) the user's ratings of the model's columns (others are ignored:
        an item added since the fit is not a column until the next recompute)."""
        idx = self.columns(rated_ids)
        keep = idx >= 0
        order = np.argsort(idx[keep], kind="stable")
        cols = idx[keep][order]
        vals = np.asarray(scores, dtype=np.float64)[keep][order]
        return sp.csr_matrix(
            (vals, cols, np.array([0, cols.size])), shape=(1, self.n_items), dtype=np.float64
        )

    def components(self, row: sp.csr_matrix, names=None) -> dict[str, np.ndarray]:
        """Raw component scores, float64 (n_items,) each: the blend's own (``Blend``'s
        ``_Parts.components``) from the stored parts; only those in ``names`` when given
        (``used``: a component weighted 0 costs nothing).

        The same sums as the engine's ``ALS.user_factors``, ``EASE.score`` and
        ``ItemContent.score``, arranged for one row over float32 mapped arrays: with
        those calls one user took 15 ms of CPU at 1M ratings (mixed-precision products
        and sparse-times-sparse), mostly the ALS solve and the content product.
        """
        cols, vals = row.indices, row.data
        if names is None:  # all of them; the few segment's extra solve only where weighted
            names = _COMPONENTS
            if not self.weights_for(row.nnz).get("als_few"):
                names = names - {"als_few"}
        out = {}
        if "ease" in names:
            out["ease"] = self._rows_sum(self.ease, cols, self._ease_weights(vals))
        if {"als", "als_content"} & names:
            x = self._als_user(cols, vals).astype(np.float32)  # one (factors x factors) solve
            if "als" in names:
                out["als"] = (self.als.item_factors_ @ x).astype(np.float64)
            if "als_content" in names:
                out["als_content"] = (self.mapped @ x).astype(np.float64)
        if "content" in names:
            if self.config["content_weighting"] == "liked":
                profile = np.maximum(vals - 3.0, 0.0) @ self.features[cols].toarray()
                content = self.features @ profile
            else:  # another weighting: the engine's own, slower path
                content = self.content.score(row).ravel()
            out["content"] = np.asarray(content, dtype=np.float64)
        if "pop" in names:
            out["pop"] = self.pop
        if "corated" in names:
            out["corated"] = self._rows_sum(self.corated, cols)
        if "als_few" in names and self.als_few is not None:
            # few users only, one more small solve (the few segment's heavy ALS)
            x_few = self._als_user(cols, vals, self.als_few).astype(np.float32)
            out["als_few"] = (self.als_few.item_factors_ @ x_few).astype(np.float64)
        if "trend" in names and self.trend is not None:
            out["trend"] = self.trend  # (a user is scored as of now: the last day's)
        return out

    def used(self, n_rated: int) -> frozenset[str]:
        """The components a user with ``n_rated`` ratings is scored from: their segment's
        weighted ones, and the ``many`` segment's when the coverage floor applies to them
        (``floor``). The others would be computed only to be multiplied by 0."""
        names = {name for name, w in self.weights_for(n_rated).items() if w}
        if int(self.config.get("few_floor", 0)) and 0 < n_rated <= self.config["few_max"]:
            names |= {name for name, w in self.config["weights"]["many"].items() if w}
        if self._new_at() and 0 < n_rated <= self.config["few_max"]:
            names.add("content")  # (the new-item place: ``floor``)
        return frozenset(names)

    def _new_at(self) -> int:
        """The few segment's new-item place (``Blend``'s ``few_new_at``); 0 when every
        column has ratings."""
        k = int(self.config.get("few_new_at", 0))
        return k if k and not self.warm.all() else 0

    def _ease_weights(self, vals: np.ndarray) -> np.ndarray | None:
        """What each rated item's EASE row is weighted by: None for 1 each (``binary``),
        else the scores (an EASE fitted on ratings, ``engine.ease.weighted_rows``)."""
        weighting = self.config.get("ease_weighting", "binary")
        if weighting == "binary":
            return None
        return weighted_rows(_one_row(vals), weighting).data

    def _als_user(self, cols: np.ndarray, vals: np.ndarray, als=None) -> np.ndarray:
        """float64 (factors,): ``ALS.user_factors`` for one row, in float64 from the rated
        items' float32 factors (of ``als``, default the blend's ``als`` part)."""
        als = als or self.als
        if not cols.size:
            return np.zeros(als.gram_.shape[0])
        w = preference_weights(_one_row(vals), als.weighting).data.astype(np.float64)
        yi = np.asarray(als.item_factors_[cols], dtype=np.float64)
        c = float(als.alpha) * w
        lhs = als.gram_ + (yi.T * c) @ yi + als.regularization * np.eye(yi.shape[1])
        return np.linalg.solve(lhs, yi.T @ (1.0 + c))

    def _rows_sum(self, matrix: sp.csr_matrix, rows: np.ndarray, weights=None) -> np.ndarray:
        """float64 (n_items,) the sum of ``matrix``'s ``rows``, each times its weight when
        given (EASE: the weighted row @ B)."""
        owner, pos = _entries(matrix, rows)
        data = matrix.data[pos].astype(np.float64)
        if weights is not None:
            data *= np.asarray(weights, dtype=np.float64)[owner]
        return np.bincount(matrix.indices[pos], weights=data, minlength=self.n_items)

    def links(self, rows: np.ndarray, cols: np.ndarray, matrix=None) -> np.ndarray:
        """float64 (len(rows), len(cols)): the stored EASE weights (or ``matrix``'s) from
        ``rows`` onto ``cols`` (0 where pruned or absent)."""
        matrix = self.ease if matrix is None else matrix
        out = np.zeros((rows.size, cols.size))
        where = np.full(self.n_items, -1, dtype=np.int64)
        where[cols] = np.arange(cols.size)
        owner, pos = _entries(matrix, rows)
        at = where[matrix.indices[pos]]
        hit = at >= 0
        out[owner[hit], at[hit]] = matrix.data[pos[hit]]
        return out

    def loved_links(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """float64 (len(rows), len(cols)): the loved co-occurrence from a user's rated
        ``rows`` onto ``cols`` where it may be a reason, else 0; all 0 unless the user's
        weights use it (``rows.size`` ratings: the few segment).

        It may be a reason where it proves at least ``REASON_MIN_PEOPLE`` loved the item:
        each rater adds at most 2 (a 5), so a sum above ``2 * (min - 1)`` is that many
        people (the privacy rule of ``recommendations.reasons``)."""
        if not self.weights_for(rows.size).get("corated"):
            return np.zeros((rows.size, cols.size))
        out = self.links(rows, cols, self.corated)
        out[out <= 2.0 * (option("REASON_MIN_PEOPLE") - 1)] = 0.0
        return out

    def weights_for(self, n_rated: int) -> dict[str, float]:
        """The warm weight set for a user with ``n_rated`` ratings (``few`` or ``many``)."""
        weights = self.config["weights"]
        segment = "few" if n_rated <= self.config["few_max"] else "many"
        return weights[segment]

    def score(self, rated_ids: np.ndarray, scores: np.ndarray) -> UserScores:
        """Blended scores of every column for a user with these live ratings (item ids,
        scores): each component standardised over all columns, summed with weights."""
        row = self.user_row(rated_ids, scores)
        total = np.zeros(self.n_items)
        # One BLAS thread: its threads only fight over a (factors x factors) solve (on
        # this busy machine one user's solve took 88 ms of wall time with them, <1 ms
        # without).
        with _blas().limit(limits=1, user_api="blas"):
            raw = self.components(row, self.used(row.nnz))
        for name, w in self.weights_for(row.nnz).items():
            if w and name in raw:
                total += w * _standardise(raw[name])
        return UserScores(self, row, self.floor(row, total, raw))

    def floor(self, row: sp.csr_matrix, total: np.ndarray, raw: dict) -> np.ndarray:
        """``total`` with the blend's coverage floor for a few-segment user: the last
        ``few_floor`` of the top 10 from the ``many`` weights, then the new-item place
        (``Blend.score``'s: ``engine.blend.new_item_place``)."""
        if not 0 < row.nnz <= self.config["few_max"]:
            return total
        k = int(self.config.get("few_floor", 0))
        if k:
            tail = np.zeros(self.n_items)
            for name, w in self.config["weights"]["many"].items():
                if w and name in raw:
                    tail += w * _standardise(raw[name])
            total = floor_slots(total[None, :], tail[None, :], k, exclude=row)[0]
        new_at = self._new_at()
        if new_at and "content" in raw:
            total = new_item_place(
                total[None, :], raw["content"][None, :], self.warm, new_at, exclude=row
            )[0]
        return total


_COMPONENTS = frozenset(
    {"ease", "als", "content", "als_content", "pop", "corated", "als_few", "trend"}
)


def _stored_als(params: dict, arrays: dict, items: str, gram: str) -> ALS:
    """An ``ALS`` whose learned state is the stored (mapped) ``items`` factors and ``gram``."""
    als = ALS(
        factors=params["factors"],
        regularization=params["regularization"],
        alpha=params["alpha"],
        weighting=params["weighting"],
    )
    als.item_factors_ = arrays[items]
    als.gram_ = np.asarray(arrays[gram], dtype=np.float64)
    return als


def _one_row(vals: np.ndarray) -> sp.csr_matrix:
    """``vals`` as a one-row CSR, so the engine's own weightings apply to one user."""
    return sp.csr_matrix((vals, np.arange(vals.size), [0, vals.size]))


def _entries(matrix: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(which of ``rows`` each entry is in, its position in ``matrix.data``) for every
    stored entry of ``matrix``'s ``rows``, in row order."""
    starts = np.asarray(matrix.indptr[rows], dtype=np.int64)
    lens = np.asarray(matrix.indptr[rows + 1], dtype=np.int64) - starts
    owner = np.repeat(np.arange(rows.size), lens)
    return owner, np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())


def _standardise(part: np.ndarray) -> np.ndarray:
    """z-score over every column (the blend's ``_standardise`` with all items candidates);
    a constant part becomes 0."""
    std = part.std()
    return (part - part.mean()) / std if std > 0 else np.zeros_like(part)


def _csr(arrays, name, shape) -> sp.csr_matrix:
    out = sp.csr_matrix(shape, dtype=np.float32)
    out.data = arrays[f"{name}_data"]
    out.indices = arrays[f"{name}_indices"]
    out.indptr = arrays[f"{name}_indptr"]
    out.has_sorted_indices = True
    return out


def top_items(scores: np.ndarray, allowed: np.ndarray, n: int) -> np.ndarray:
    """int64 model indices of the ``n`` best ``allowed`` (bool) columns, best first, ties
    by lower index (the order of the blend's ``top_n``).

    Written here for one row rather than calling ``top_n``: its parallel numba kernel
    took 54 ms a row against 1.3 ms for this (10k items, this busy 2-core machine).
    """
    pos = np.flatnonzero(allowed)
    if pos.size > n:  # a threshold, then an exact stable sort of the survivors
        threshold = np.partition(scores[pos], pos.size - n)[pos.size - n]
        pos = pos[scores[pos] >= threshold]
    return pos[np.argsort(-scores[pos], kind="stable")][:n].astype(np.int64)


@functools.cache
def _blas():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


# -- the parts a process holds --------------------------------------------------------------
_held: tuple[str, ModelParts | None] | None = None


def parts_for(version: str) -> ModelParts | None:
    """This process's parts of ``version`` (mapped from the store once); None when the
    model is off or the version has none (then lists come from the neighbour ranking).

    Raises one of ``store.RedisUnavailable`` when Redis cannot be read.
    """
    global _held
    if not enabled():
        return None
    if _held is None or _held[0] != version:
        _held = None  # free the old version's mapping first
        try:
            parts = ModelParts(store.snapshot_get(version, part="model"))
        except LookupError:
            parts = None
        _held = (version, parts)
    return _held[1]


def parts_clear() -> None:
    """Forget the parts this process holds (tests)."""
    global _held
    _held = None


def min_ratings(with_model: bool) -> int:
    """The fewest ratings for a personal list: ``MODEL_MIN_RATINGS`` when set and the model
    ranks it (its ``few`` segment is fitted for them), else ``MIN_RATINGS_FOR_PERSONAL``."""
    if with_model and option("MODEL_MIN_RATINGS") is not None:
        return option("MODEL_MIN_RATINGS")
    return option("MIN_RATINGS_FOR_PERSONAL")


# -- scoring a block of users at once (the stored-lists stage) ------------------------------
# The stored-lists stage scores every user; one ``ModelParts.score`` call a user spent most
# of its time building one-row sparse matrices and in per-call overhead. A block of users is
# scored here with the same arithmetic, in the same order, so each user's scores are the
# same float64 numbers ``score`` gives (the stored lists equal the live path's by the same
# numbers, not by a tolerance; bench/ready_stage.py checks the bytes). Where a batched
# operation would change the rounding (a BLAS matrix-matrix product in place of the per-user
# matrix-vector one), the per-user operation is kept.


def block_rows(parts: ModelParts, csr: sp.csr_matrix, item_ids: np.ndarray) -> sp.csr_matrix:
    """(n_rows, n_items) float64: ``csr``'s rows (a block of users' ratings, columns by
    ``item_ids``) in the model's columns, as ``ModelParts.user_row`` makes each one."""
    n_rows = csr.shape[0]
    lens = np.diff(csr.indptr)
    owner = np.repeat(np.arange(n_rows), lens)
    idx = _index_of(parts.item_ids, np.asarray(item_ids)[csr.indices])
    keep = idx >= 0
    order = np.lexsort((idx[keep], owner[keep]))  # by user, then column (stable)
    cols, who = idx[keep][order], owner[keep][order]
    vals = np.asarray(csr.data, dtype=np.float64)[keep][order]
    indptr = np.r_[0, np.cumsum(np.bincount(who, minlength=n_rows))]
    return sp.csr_matrix((vals, cols, indptr), shape=(n_rows, parts.n_items))


def score_block(parts: ModelParts, rows: sp.csr_matrix) -> list[UserScores]:
    """``ModelParts.score`` for each of ``rows`` ((n_users, n_items) CSR from
    :func:`block_rows`): the same float64 scores, computed a block at a time."""
    n_users, n = rows.shape
    indptr, cols_all, vals_all = rows.indptr, rows.indices, rows.data
    als = parts.als
    config = parts.config
    pref = preference_weights(rows, als.weighting).data.astype(np.float64)
    ease_w = None
    if config.get("ease_weighting", "binary") != "binary":
        ease_w = weighted_rows(rows, config["ease_weighting"]).data
    eye = als.regularization * np.eye(als.gram_.shape[0])
    used = [parts.used(k) for k in np.diff(indptr).tolist()]
    need = frozenset().union(*used)  # what some user of the block is scored from
    with _blas().limit(limits=1, user_api="blas"):
        # EASE: every user's weighted rows of B summed by one bincount over (user, column)
        # bins, each bin's terms in the order the per-user sum adds them.
        ease = corated = None
        if "ease" in need:
            owner, pos = _entries(parts.ease, cols_all)
            data = parts.ease.data[pos].astype(np.float64)
            if ease_w is not None:
                data *= ease_w[owner]
            user = np.repeat(np.arange(n_users), np.diff(indptr))[owner]
            ease = np.bincount(
                user * n + parts.ease.indices[pos], weights=data, minlength=n_users * n
            ).reshape(n_users, n)
        if "corated" in need:
            owner, pos = _entries(parts.corated, cols_all)
            user = np.repeat(np.arange(n_users), np.diff(indptr))[owner]
            corated = np.bincount(
                user * n + parts.corated.indices[pos],
                weights=parts.corated.data[pos].astype(np.float64),
                minlength=n_users * n,
            ).reshape(n_users, n)
        liked = config["content_weighting"] == "liked"
        profiles = np.zeros((n_users, parts.features.shape[1]))
        factors = np.zeros((n_users, als.gram_.shape[0]), dtype=np.float32)
        solve = bool({"als", "als_content"} & need)
        for b in range(n_users):
            lo, hi = indptr[b], indptr[b + 1]
            cols, vals = cols_all[lo:hi], vals_all[lo:hi]
            if cols.size and solve:  # ModelParts._als_user, from the block's weights
                yi = np.asarray(als.item_factors_[cols], dtype=np.float64)
                c = float(als.alpha) * pref[lo:hi]
                lhs = als.gram_ + (yi.T * c) @ yi + eye
                factors[b] = np.linalg.solve(lhs, yi.T @ (1.0 + c))
            if liked and cols.size and "content" in need:
                profiles[b] = np.maximum(vals - 3.0, 0.0) @ parts.features[cols].toarray()
        # one sparse product for the block: per column, the same sum as features @ profile
        # (contiguous rows: a strided row's mean and std would be summed in another order)
        content = None
        if liked and "content" in need:
            content = np.ascontiguousarray((parts.features @ profiles.T).T)
        out = []
        for b in range(n_users):
            row = rows[b]
            x = factors[b]
            names = used[b]
            raw = {}
            if "ease" in names:
                raw["ease"] = ease[b]
            if "als" in names:
                raw["als"] = (als.item_factors_ @ x).astype(np.float64)
            if "content" in names:
                raw["content"] = content[b] if liked else parts.content.score(row).ravel()
            if "als_content" in names:
                raw["als_content"] = (parts.mapped @ x).astype(np.float64)
            if "pop" in names:
                raw["pop"] = parts.pop
            if "corated" in names:
                raw["corated"] = corated[b]
            if "als_few" in names and parts.als_few is not None:
                # few users only, one small solve each (``ModelParts.components``')
                x_few = parts._als_user(row.indices, row.data, parts.als_few)
                raw["als_few"] = (parts.als_few.item_factors_ @ x_few.astype(np.float32)).astype(
                    np.float64
                )
            total = np.zeros(n)
            for name, w in parts.weights_for(row.nnz).items():
                if w and name in raw:
                    total += w * _standardise(np.asarray(raw[name], dtype=np.float64))
            out.append(UserScores(parts, row, parts.floor(row, total, raw)))
    return out


def columns_of(parts: ModelParts, item_ids: np.ndarray) -> np.ndarray:
    """int64 the model column of each of ``item_ids`` (-1: none), kept for the last
    ``item_ids`` array asked about: the stored-lists stage asks for the snapshot's items
    once a user, with the same array each time (a lookup a user cost 5 ms at 1M)."""
    held = parts.__dict__.get("_columns_of")
    if held is None or held[0] is not item_ids:
        held = (item_ids, _index_of(parts.item_ids, item_ids))
        parts.__dict__["_columns_of"] = held
    return held[1]


def explain_top(
    scored: UserScores, top: np.ndarray, n_reasons: int
) -> tuple[np.ndarray, np.ndarray]:
    """``UserScores.explain`` for every one of ``top`` at once: int64 (len(top),
    ``n_reasons``) the user's items behind each (model indices, strongest first, ties by
    lower index, -1 padded) and int8 their reason codes. Same rules as ``explain``, whose
    loop over the top items was a third of a stored list's cost."""
    p = scored.parts
    rated, scores = scored.row.indices, scored.row.data
    liked = rated[scores >= _LIKED]
    because = np.full((top.size, n_reasons), -1, dtype=np.int64)
    codes = np.full(top.size, store.REASON_EVIDENCE, dtype=np.int8)
    if not top.size:
        return because, codes
    loved = p.loved_links(rated, top)
    by_loved = p.warm[top] & (loved > 0).any(axis=0)
    codes[by_loved] = store.REASON_LOVED
    _strongest(because, by_loved, rated, loved)
    links = p.links(rated, top)
    by_links = p.warm[top] & ~by_loved & (links > 0).any(axis=0)
    _strongest(because, by_links, rated, links)
    if liked.size:
        cos = (p.features[liked] @ p.features[top].T).toarray()
        by_content = ~by_loved & ~by_links & (cos > 0).any(axis=0)
        codes[by_content & ~p.warm[top]] = store.REASON_NEW
        _strongest(because, by_content, liked, cos)
    return because, codes


def _strongest(out: np.ndarray, columns: np.ndarray, who: np.ndarray, strength: np.ndarray):
    """Fill ``out``'s rows of the ``columns`` (bool) with the ``who`` (ascending) of
    positive ``strength`` (len(who), n_columns), strongest first, ties by lower ``who``."""
    if not columns.any() or not who.size:
        return
    s = strength[:, columns]
    order = np.argsort(-s, axis=0, kind="stable")[: out.shape[1]]
    picked = np.where(np.take_along_axis(s, order, axis=0) > 0, who[order], -1)
    out[np.flatnonzero(columns), : picked.shape[0]] = picked.T
