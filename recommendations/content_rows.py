"""Content neighbour rows: each catalogue item's most similar items by genre, year and title.

Pure numpy/scipy (no Django): the recompute fits a :class:`ContentModel` once per version
(TF-IDF, ``engine.content.ItemContent``), computes every item's row in shards
(:func:`content_rows`) and stores them beside the other neighbour lists; an item added or
changed between recomputes gets its row from one sparse product of its vector against
the model's features (:meth:`ContentModel.scores`), and is offered to the rows of the items
it is close to (:func:`offer`). Pages read rows; nothing here runs in a request.

A row is the union of two lists, best first (score, then popularity, then item id):

- the ``k`` most similar items (cosine > 0);
- the ``new_k`` most similar items nobody had rated, among those at least ``new_min``
  similar (the "New, not rated yet" places of a panel, which must not be crowded out
  by rated items).

Popularity is the item's rating count when the row was computed (stored as the row's
``support``): it breaks ties (many items share genres and a year) and marks the items
nobody had rated (0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from recommendations.engine import RatingMatrix
from recommendations.engine.content import ItemContent, item_tokens
from recommendations.engine.data import ItemInfo

# One sparse content vector: token columns and their weights (unit norm).
VECTOR_DTYPE = np.dtype([("col", "<i4"), ("w", "<f4")])
_FIELDS = ("genre", "year", "title", "tag")


@dataclass(frozen=True, eq=False)
class ContentModel:
    """A fitted TF-IDF model of the catalogue, rows ordered by popularity then id.

    ``item_ids`` int64 (n,) and ``popularity`` int64 (n,) (rating counts at fit time) by
    row; ``features`` CSR float64 (n, n_tokens), unit-norm rows, so row products are
    cosines; ``vocabulary`` str (n_tokens,); ``idf`` float64 (n_tokens,) as the fit weighed
    each token; ``field_weights`` float64 (4,) of genre, year, title and tag tokens.
    The row order makes the engine's tie-break (lower row first) mean "more popular first".
    """

    item_ids: np.ndarray
    popularity: np.ndarray
    features: sp.csr_matrix
    vocabulary: np.ndarray
    idf: np.ndarray
    field_weights: np.ndarray

    @property
    def n_items(self) -> int:
        return int(self.item_ids.size)

    # -- fitting and storing ---------------------------------------------------------------
    @classmethod
    def fit(cls, info: ItemInfo, popularity: np.ndarray, **weights) -> ContentModel:
        """TF-IDF rows of the items in ``info`` (``popularity``: int (n,), by ``info`` row)."""
        empty = np.empty(0, dtype=np.int64)
        matrix = RatingMatrix.from_arrays(empty, empty, empty, users=[], items=info.item_ids)
        content = ItemContent(**weights).fit(matrix, info=info)
        popularity = np.asarray(popularity, dtype=np.int64)
        order = np.lexsort((info.item_ids, -popularity))
        features = content.features_[order]
        df = np.bincount(content.features_.indices, minlength=len(content.vocabulary_))
        n = info.item_ids.size
        return cls(
            item_ids=np.asarray(info.item_ids, dtype=np.int64)[order],
            popularity=popularity[order],
            features=sp.csr_matrix(features),
            vocabulary=np.array(content.vocabulary_, dtype=str),
            idf=np.log((1 + n) / (1 + df)) + 1.0,
            field_weights=np.array([getattr(content, f"{name}_weight") for name in _FIELDS]),
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        f = self.features
        vocabulary = self.vocabulary if self.vocabulary.size else np.array([], dtype="<U1")
        return {
            "item_ids": self.item_ids,
            "popularity": self.popularity,
            # int32 where it fits, as the ratings matrix: the engine's kernels are compiled
            # for those index types already.
            "indptr": f.indptr.astype(np.int32 if f.nnz < 2**31 else np.int64),
            "indices": f.indices.astype(np.int32),
            "data": f.data.astype(np.float64),
            "vocabulary": vocabulary,
            "idf": self.idf,
            "field_weights": self.field_weights,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ContentModel:
        """Over the given arrays (mapped files are used as they are)."""
        n, v = arrays["item_ids"].size, arrays["vocabulary"].size
        f = sp.csr_matrix((n, v), dtype=np.float64)
        f.data, f.indices, f.indptr = arrays["data"], arrays["indices"], arrays["indptr"]
        f.has_sorted_indices = True
        return cls(
            item_ids=arrays["item_ids"],
            popularity=arrays["popularity"],
            features=f,
            vocabulary=arrays["vocabulary"],
            idf=arrays["idf"],
            field_weights=arrays["field_weights"],
        )

    def rows_of(self, item_ids) -> np.ndarray:
        """Rows of the given item ids that the model has (int64; unknown ids left out)."""
        order = self.__dict__.get("_order")
        if order is None:
            order = np.argsort(self.item_ids, kind="stable")
            object.__setattr__(self, "_order", order)
        ids = np.asarray(list(item_ids), dtype=np.int64)
        if not ids.size or not self.item_ids.size:
            return np.empty(0, dtype=np.int64)
        sorted_ids = self.item_ids[order]
        at = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
        return order[at[sorted_ids[at] == ids]].astype(np.int64)

    # -- one item's vector and its scores ------------------------------------------------
    def columns(self) -> dict[str, int]:
        cached = self.__dict__.get("_columns")
        if cached is None:
            cached = {str(t): j for j, t in enumerate(self.vocabulary.tolist())}
            object.__setattr__(self, "_columns", cached)
        return cached

    def vector(self, info: ItemInfo, k: int = 0) -> np.ndarray:
        """Item row ``k`` of ``info`` as this model weighs a row (``VECTOR_DTYPE``, unit
        norm): the tokens the model knows, with its idf. An item the fit saw gets its row
        of ``features`` back (to float precision) while its tokens are unchanged."""
        columns = self.columns()
        weights = dict(zip(_FIELDS, self.field_weights.tolist(), strict=True))
        found: dict[int, float] = {}
        for part, tokens in item_tokens(info, k).items():
            for token in tokens:
                j = columns.get(token)
                if j is not None:
                    found[j] = weights[part] * float(self.idf[j])
        out = np.empty(len(found), dtype=VECTOR_DTYPE)
        cols = np.fromiter(sorted(found), dtype=np.int64, count=len(found))
        values = np.array([found[j] for j in cols.tolist()], dtype=np.float64)
        norm = float(np.linalg.norm(values)) if values.size else 0.0
        out["col"] = cols
        out["w"] = values / norm if norm else values
        return out

    def scores(self, vector: np.ndarray) -> np.ndarray:
        """float64 (n,): cosine of every row with ``vector``. One sparse product: it
        touches only the rows sharing a token with the vector."""
        q = np.zeros(self.vocabulary.size)
        q[vector["col"]] = vector["w"]
        return np.asarray(self.features @ q).ravel()


def vector_dot(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two ``VECTOR_DTYPE`` vectors (sorted columns, unit norm)."""
    common, ia, ib = np.intersect1d(a["col"], b["col"], assume_unique=True, return_indices=True)
    if not common.size:
        return 0.0
    return float(np.dot(a["w"][ia].astype(np.float64), b["w"][ib].astype(np.float64)))


# -- rows ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One item's content row: ``ids`` int64, ``scores`` float64, ``support`` int64
    (popularity), best first."""

    ids: np.ndarray
    scores: np.ndarray
    support: np.ndarray


def select(
    ids: np.ndarray, scores: np.ndarray, support: np.ndarray, *, k: int, new_k: int, new_min: float
) -> Row:
    """The row over these candidates: the top ``k`` by (score, popularity, id) with a
    positive score, with the top ``new_k`` of those nobody had rated scoring ``new_min`` or
    more, in that order."""
    ids = np.asarray(ids, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    support = np.asarray(support, dtype=np.int64)
    keep = scores > 0
    ids, scores, support = ids[keep], scores[keep], support[keep]
    order = np.lexsort((ids, -support, -scores))
    unrated = order[(support[order] == 0) & (scores[order] >= new_min)][:new_k]
    take = np.zeros(ids.size, dtype=bool)
    take[order[:k]] = True
    take[unrated] = True
    order = order[take[order]]
    return Row(ids[order], scores[order], support[order])


def content_rows(
    model: ContentModel, start: int, stop: int, *, k: int, new_k: int, new_min: float
) -> tuple[dict[int, Row], np.ndarray]:
    """Rows ``start..stop-1`` of the model (by item id) and their floors.

    Computed by :func:`_topk_rows` (per row, work in proportion to the items sharing a
    token with it; no n x n matrix). Floors: float64 (stop - start, 2): the least score a
    newcomer needs to enter each row's top-k part (0: any positive score enters) and its
    unrated part (``new_min`` while that part has room). They only rise as items are
    offered (:func:`offer`), so a stored floor is a safe filter for which rows a new item
    could enter.
    """
    if start >= stop:
        return {}, np.zeros((0, 2))
    f = model.features
    t = f.T.tocsr()  # token-major: the items of each token
    t.sort_indices()
    width = k + new_k
    out_idx = np.full((stop - start, width), -1, dtype=np.int64)
    out_sc = np.zeros((stop - start, width))
    _topk_rows(
        f.indptr.astype(np.int64), f.indices.astype(np.int64), np.asarray(f.data, np.float64),
        t.indptr.astype(np.int64), t.indices.astype(np.int64), np.asarray(t.data, np.float64),
        np.asarray(model.popularity, np.int64), start, stop, k, new_k, float(new_min),
        out_idx, out_sc,
    )  # fmt: skip
    out: dict[int, Row] = {}
    floors = np.zeros((stop - start, 2))
    for r in range(stop - start):
        idx = out_idx[r]
        keep = idx >= 0
        idx = idx[keep]
        row = Row(model.item_ids[idx], out_sc[r][keep], np.asarray(model.popularity)[idx])
        out[int(model.item_ids[start + r])] = row
        floors[r] = row_floors(row, k=k, new_k=new_k, new_min=new_min)
    return out, floors


# Written here rather than with the engine's top-k kernel (``compute_neighbours``, used
# first): content rows touch most of the catalogue through genre and year tokens, with
# many equal scores, and that kernel's heap took ~2 ms a row at 62k items (~130 CPU s for
# the catalogue, bench/cold_start.py); accumulating then partitioning the touched items
# is several times cheaper. Same order of summation as scipy's product of one vector
# (over shared tokens by column), so the per-item task computes the same scores.
@njit(cache=True, parallel=True, nogil=True)
def _topk_rows(
    indptr, indices, data, t_indptr, t_indices, t_data, popularity, start, stop, k, new_k,
    new_min, out_idx, out_sc,
):  # fmt: skip
    n = popularity.size
    m = stop - start
    n_chunks = min(m, 64)
    for c in prange(n_chunks):
        acc = np.zeros(n)
        seen = np.zeros(n, dtype=np.bool_)
        touched = np.empty(n, dtype=np.int64)
        for row in range(start + c * m // n_chunks, start + (c + 1) * m // n_chunks):
            nt = 0
            for p in range(indptr[row], indptr[row + 1]):
                col, w = indices[p], data[p]
                for q in range(t_indptr[col], t_indptr[col + 1]):
                    j = t_indices[q]
                    if j == row:
                        continue
                    if not seen[j]:
                        seen[j] = True
                        touched[nt] = j
                        nt += 1
                    acc[j] += w * t_data[q]
            cand = touched[:nt]
            vals = np.empty(nt)
            positive = np.zeros(nt, dtype=np.bool_)
            fresh = np.zeros(nt, dtype=np.bool_)
            for x in range(nt):
                vals[x] = acc[cand[x]]
                positive[x] = vals[x] > 0
                fresh[x] = positive[x] and vals[x] >= new_min and popularity[cand[x]] == 0
            top = _best(cand[positive], vals[positive], k)
            new = _best(cand[fresh], vals[fresh], new_k)
            both = np.unique(np.concatenate((top, new)))  # ascending rows: the tie order
            score = np.empty(both.size)
            for x in range(both.size):
                score[x] = acc[both[x]]
            for x in range(nt):
                acc[cand[x]] = 0.0
                seen[cand[x]] = False
            order = np.argsort(-score, kind="mergesort")
            r = row - start
            for x in range(order.size):
                out_idx[r, x] = both[order[x]]
                out_sc[r, x] = score[order[x]]


@njit(cache=True)
def _best(cand, vals, k):
    """The ``k`` of rows ``cand`` with the largest ``vals``, ties to lower rows."""
    if cand.size <= k:
        return cand.copy()
    if k == 0:
        return cand[:0].copy()
    edge = -np.partition(-vals, k - 1)[k - 1]
    above = cand[vals > edge]
    tied = np.sort(cand[vals == edge])[: k - above.size]
    return np.concatenate((above, tied))


def row_floors(row: Row, *, k: int, new_k: int, new_min: float) -> tuple[float, float]:
    """(top-k floor, unrated floor) of a row: see :func:`content_rows`."""
    main = float(row.scores[k - 1]) if row.ids.size >= k else 0.0
    unrated = row.scores[row.support == 0]
    new = float(unrated[new_k - 1]) if unrated.size >= new_k else new_min
    return main, max(new, new_min)


def offer(
    row: Row, item_id: int, score: float, support: int, *, k: int, new_k: int, new_min: float
) -> Row | None:
    """``row`` with ``item_id`` (at ``score``, popularity ``support``) in its place: its old
    entry replaced, or it entered, or it left; None when the row does not change.

    Exact for an item entering or rising (the row held every item that could beat it);
    an entry that falls or leaves frees a place the next recompute fills.
    """
    present = row.ids == item_id
    ids, scores, support_ = row.ids[~present], row.scores[~present], row.support[~present]
    new = select(
        np.r_[ids, item_id], np.r_[scores, score], np.r_[support_, support],
        k=k, new_k=new_k, new_min=new_min,
    )  # fmt: skip
    same = new.ids.size == row.ids.size and np.array_equal(new.ids, row.ids)
    if same and np.allclose(new.scores, row.scores, rtol=0, atol=1e-7):
        return None
    return new
