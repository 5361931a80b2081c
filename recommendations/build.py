"""Building a model version: the ratings snapshot, the shard plan, each shard's rows.

The numeric work is the engine's (``recommendations.engine``); this module only turns
database rows into arrays and engine output into the store's encoded rows, keyed by
database ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recommendations import store
from recommendations.conf import get as option
from recommendations.engine import Baselines, RatingMatrix, bm25_weight, compute_neighbours

# Kinds of rows a version holds, and whether they are indexed by item or by user.
ROW_KINDS = {"ii": "item", "ip": "item", "uu": "user", "ur": "user"}
# How each kind of neighbour list is computed: for ranking, cosine on BM25 weights (the
# engine's best top-N configuration on MovieLens 100k); for predicting a rating, shrunk
# pearson_baseline (its best RMSE). "k" and "shrinkage" name settings in conf.py.
_LISTS = {
    "ii": {"bm25": True, "measure": "cosine", "k": "ITEM_K", "shrinkage": None},
    "uu": {"bm25": True, "measure": "cosine", "k": "USER_K", "shrinkage": None},
    "ip": {
        "bm25": False,
        "measure": "pearson_baseline",
        "k": "PREDICT_K",
        "shrinkage": "PREDICT_SHRINKAGE",
    },
}


def snapshot_ratings(*, progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """All ratings as arrays ``user`` (int64), ``item`` (int64), ``score`` (float32).

    Streamed from the database in chunks as plain tuples, never as model objects.
    """
    from catalog.models import Rating

    chunks_u, chunks_i, chunks_s = [], [], []
    rows = Rating.objects.order_by().values_list("user_id", "item_id", "score")
    batch: list[tuple[int, int, float]] = []
    for row in rows.iterator(chunk_size=20_000):
        batch.append(row)
        if len(batch) == 100_000:
            _flush(batch, chunks_u, chunks_i, chunks_s, progress)
            batch = []
    _flush(batch, chunks_u, chunks_i, chunks_s, progress)
    return {
        "user": np.concatenate(chunks_u) if chunks_u else np.empty(0, np.int64),
        "item": np.concatenate(chunks_i) if chunks_i else np.empty(0, np.int64),
        "score": np.concatenate(chunks_s) if chunks_s else np.empty(0, np.float32),
    }


def _flush(batch, chunks_u, chunks_i, chunks_s, progress):
    if not batch:
        return
    array = np.array(batch, dtype=np.float64)
    chunks_u.append(array[:, 0].astype(np.int64))
    chunks_i.append(array[:, 1].astype(np.int64))
    chunks_s.append(array[:, 2].astype(np.float32))
    if progress is not None:
        progress(len(batch))


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """What every shard derives, identically, from one snapshot."""

    matrix: RatingMatrix  # raw scores
    ranking: RatingMatrix  # BM25-weighted, for the ranking similarities
    baselines: Baselines

    @classmethod
    def from_snapshot(cls, arrays: dict[str, np.ndarray]) -> ModelInputs:
        matrix = RatingMatrix.from_arrays(arrays["user"], arrays["item"], arrays["score"])
        return cls(matrix=matrix, ranking=bm25_weight(matrix), baselines=Baselines().fit(matrix))

    def n_rows(self, kind: str) -> int:
        return self.matrix.n_items if ROW_KINDS[kind] == "item" else self.matrix.n_users


def shard_plan(inputs: ModelInputs, shards: int) -> list[tuple[str, int, int]]:
    """(kind, start, stop) row ranges covering every kind in about ``shards`` parts each."""
    plan = []
    for kind in ROW_KINDS:
        n = inputs.n_rows(kind)
        bounds = np.linspace(0, n, min(shards, max(n, 1)) + 1).round().astype(int)
        plan += [(kind, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return plan


def compute_rows(inputs: ModelInputs, kind: str, start: int, stop: int) -> dict[int, bytes]:
    """Encoded rows ``start..stop-1`` of ``kind``, keyed by database id."""
    m = inputs.matrix
    if kind == "ur":
        indptr = m.csr.indptr
        return {
            int(m.user_ids[u]): store.encode_ratings(
                m.item_ids[m.csr.indices[indptr[u] : indptr[u + 1]]],
                m.csr.data[indptr[u] : indptr[u + 1]],
            )
            for u in range(start, stop)
        }
    if kind not in _LISTS:
        raise ValueError(f"unknown row kind {kind!r}")
    spec = _LISTS[kind]
    nb = compute_neighbours(
        inputs.ranking if spec["bm25"] else m,
        kind=ROW_KINDS[kind],
        measure=spec["measure"],
        k=option(spec["k"]),
        shrinkage=option(spec["shrinkage"]) if spec["shrinkage"] else 0.0,
        rows=(start, stop),
        baselines=inputs.baselines,
    )
    ids = m.item_ids if ROW_KINDS[kind] == "item" else m.user_ids
    out = {}
    for r in range(nb.n_rows):
        idx = nb.indices[r]
        keep = (idx >= 0) & (np.nan_to_num(nb.scores[r], nan=0.0) > 0)
        out[int(ids[start + r])] = store.encode_neighbours(
            ids[idx[keep]], nb.scores[r][keep], nb.support[r][keep]
        )
    return out


def bias_fields(inputs: ModelInputs) -> dict[str, float]:
    b = inputs.baselines
    fields = {"mu": float(b.global_mean_)}
    fields.update(
        {f"u:{uid}": float(v) for uid, v in zip(inputs.matrix.user_ids, b.user_bias_, strict=True)}
    )
    fields.update(
        {f"i:{iid}": float(v) for iid, v in zip(inputs.matrix.item_ids, b.item_bias_, strict=True)}
    )
    return fields


def with_user_ratings(
    arrays: dict[str, np.ndarray], user_id: int, items: np.ndarray, scores: np.ndarray
) -> dict[str, np.ndarray]:
    """The snapshot with ``user_id``'s ratings replaced by the given ones."""
    keep = arrays["user"] != user_id
    return {
        "user": np.concatenate([arrays["user"][keep], np.full(len(items), user_id, np.int64)]),
        "item": np.concatenate([arrays["item"][keep], np.asarray(items, np.int64)]),
        "score": np.concatenate([arrays["score"][keep], np.asarray(scores, np.float32)]),
    }
