"""Exact top-K neighbours (item-item or user-user) under four similarity measures.

Definitions, for two rows a and b (items for ``kind="item"``, users for ``kind="user"``),
where the "other side" is users for items and items for users, and C is the set of
other-side entities that rated both (the co-ratings, ``n = |C|``):

``cosine``
    ``a.b / (|a| |b|)`` over the full rating vectors (implicit's CosineRecommender uses the
    same). With ``co_rated_norms=True`` the norms run over C only, which is Surprise's
    ``cosine``.
``adjusted_cosine``
    cosine of the vectors centred on the other side's means (for items: each rating minus
    its user's mean; for users: minus the item's mean), full norms (or co-rated norms).
``pearson``
    exact Pearson correlation over C, each side centred on the mean of its co-rated
    entries (Surprise's ``pearson``; not the centred-cosine approximation).
``pearson_baseline``
    ``sum(e_a e_b) / sqrt(sum(e_a^2) sum(e_b^2))`` over C, where ``e = r - b_ui`` are the
    residuals from :class:`~.matrix.Baselines` (Surprise's ``pearson_baseline`` before
    shrinkage).

Then pairs with ``n < min_support`` are dropped, pairs whose similarity is undefined (a
zero denominator) are dropped, and the similarity is shrunk by ``n / (n + shrinkage)``.
Surprise shrinks ``pearson_baseline`` by ``(n - 1) / (n - 1 + shrinkage)`` and forces
``min_support >= 2`` for it; we follow the issue's ``n / (n + shrinkage)`` for every
measure, so shrunk values differ from Surprise's by exactly that factor (the tests check
this relation). A row is never its own neighbour. Negative similarities are kept when a row
has fewer than k positive neighbours (consumers that want only positive evidence stop at
the first score <= 0, the lists being sorted).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from . import _kernels
from .matrix import Baselines, RatingMatrix

__all__ = [
    "MEASURES",
    "Neighbours",
    "compute_neighbour_pairs",
    "compute_neighbours",
    "concat_neighbours",
    "merge_neighbours",
    "pair_ranges",
    "pair_work",
]

MEASURES = ("cosine", "adjusted_cosine", "pearson", "pearson_baseline")


@dataclass(frozen=True, eq=False)
class Neighbours:
    """Top-k neighbour lists for rows ``offset .. offset + n_rows - 1``.

    Attributes:
        indices: int32 (n_rows, k); neighbour row indices (same index space as the rows:
            item indices for ``kind="item"``, user indices for ``kind="user"``), best first;
            padded with -1 when a row has fewer than k neighbours.
        scores: float32 by default (or float64 when asked) (n_rows, k); similarity after
            shrinkage, non-increasing along each row; padded with NaN.
        support: int32 (n_rows, k); number of co-ratings of the pair; padded with 0.
        offset: index of the first row (non-zero for a shard).
        kind, measure: how the lists were computed.
    """

    indices: np.ndarray
    scores: np.ndarray
    support: np.ndarray
    offset: int = 0
    kind: str = "item"
    measure: str = "cosine"

    @property
    def n_rows(self) -> int:
        return self.indices.shape[0]

    @property
    def k(self) -> int:
        return self.indices.shape[1]

    def row(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(neighbour indices, scores) of absolute row ``index``, padding removed.

        A row outside this shard has no neighbours (empty arrays), not an error.
        """
        r = index - self.offset
        if r < 0 or r >= self.n_rows:
            return np.empty(0, np.int32), np.empty(0, self.scores.dtype)
        idx = self.indices[r]
        n = int(np.count_nonzero(idx >= 0))
        return idx[:n], self.scores[r, :n]

    def to_csr(self, n_cols: int, *, positive_only: bool = True):
        """The lists as a sparse (offset + n_rows, n_cols) matrix of scores (rows before the
        offset are empty). Zero and negative scores are dropped when ``positive_only``."""
        import scipy.sparse as sp

        valid = self.indices >= 0
        if positive_only:
            valid &= np.nan_to_num(self.scores, nan=0.0) > 0
        counts = valid.sum(axis=1)
        indptr = np.zeros(self.offset + self.n_rows + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[self.offset + 1 :])
        return sp.csr_matrix(
            (self.scores[valid].astype(np.float64), self.indices[valid], indptr),
            shape=(self.offset + self.n_rows, n_cols),
        )


def _other_side_centred(matrix: RatingMatrix, kind: str) -> np.ndarray:
    """Ratings (aligned with csr.data) minus the other side's means."""
    csr = matrix.csr
    if kind == "item":
        return csr.data - np.repeat(matrix.user_means, matrix.user_counts)
    return csr.data - matrix.item_means[csr.indices]


def compute_neighbours(
    matrix: RatingMatrix,
    *,
    kind: str = "item",
    measure: str = "cosine",
    k: int = 50,
    shrinkage: float = 100.0,
    min_support: int = 1,
    rows: tuple[int, int] | None = None,
    baselines: Baselines | None = None,
    co_rated_norms: bool = False,
    dtype=np.float32,
    n_threads: int | None = None,
) -> Neighbours:
    """Exact top-k neighbours of each row in ``rows`` against all rows of the same kind.

    Args:
        matrix: the ratings.
        kind: ``"item"`` (item-item) or ``"user"`` (user-user).
        measure: one of :data:`MEASURES` (see the module docstring for the definitions).
        k: neighbours kept per row.
        shrinkage: ``sim * n / (n + shrinkage)``; 0 disables it.
        min_support: pairs with fewer co-ratings are not neighbours.
        rows: optional ``(start, stop)`` range of row indices (a shard); the full run equals
            the concatenation of shard results (:func:`concat_neighbours`).
        baselines: fitted :class:`Baselines` for ``pearson_baseline`` (fitted with defaults
            on ``matrix`` when omitted).
        co_rated_norms: cosine measures only: take the norms over co-rated entries.
        dtype: dtype of the returned scores (selection is always done in float64).
        n_threads: threads for the kernel (default: all numba threads).

    Ties are broken deterministically: higher score first, then lower index. Memory is a
    few dense vectors of length n_rows per thread plus the (n_rows, k) outputs; no n x n
    matrix is ever formed.
    """
    n = _check(matrix, kind, measure, k)
    start, stop = (0, n) if rows is None else (int(rows[0]), int(rows[1]))
    if not 0 <= start <= stop <= n:
        raise ValueError(f"rows {rows} out of range for {n} rows")
    a, t, mode, inv_norm = _kernel_inputs(matrix, kind, measure, baselines, co_rated_norms)
    threads = _threads(n_threads)
    n_chunks = max(1, min(stop - start, threads * 16))
    full = start == 0 and stop == n and n > 0
    # a full run: each symmetric pair once, offered to both rows
    a_to_t = _a_to_t(matrix, kind) if full else None
    idx, sc, sup = _run_kernel(
        a,
        t,
        start,
        stop,
        n,
        k,
        mode,
        inv_norm,
        float(shrinkage),
        int(min_support),
        threads,
        n_chunks,
        a_to_t,
    )
    return Neighbours(
        indices=idx,
        scores=sc.astype(dtype, copy=False),
        support=sup,
        offset=start,
        kind=kind,
        measure=measure,
    )


def _check(matrix: RatingMatrix, kind: str, measure: str, k: int) -> int:
    """The number of rows of ``kind``, after checking the arguments."""
    if kind not in ("item", "user"):
        raise ValueError(f"kind must be 'item' or 'user', not {kind!r}")
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, not {measure!r}")
    if k < 1:
        raise ValueError("k must be >= 1")
    return matrix.n_items if kind == "item" else matrix.n_users


def _kernel_inputs(matrix, kind, measure, baselines, co_rated_norms):
    """(a, t, mode, inv_norm): the rows of ``kind`` (a) and their transpose (t) as
    (indptr, indices, values) with the measure's values, its kernel mode and the inverse
    full norms (MODE_DOT only)."""
    n = matrix.n_items if kind == "item" else matrix.n_users
    if measure == "cosine":
        values = matrix.csr.data.astype(np.float64)
        mode = _kernels.MODE_CORATED_COSINE if co_rated_norms else _kernels.MODE_DOT
    elif measure == "adjusted_cosine":
        values = _other_side_centred(matrix, kind)
        mode = _kernels.MODE_CORATED_COSINE if co_rated_norms else _kernels.MODE_DOT
    elif measure == "pearson":
        values = matrix.csr.data.astype(np.float64)
        mode = _kernels.MODE_PEARSON
    else:
        if baselines is None:
            baselines = Baselines().fit(matrix)
        values = baselines.residuals(matrix)
        mode = _kernels.MODE_CORATED_COSINE

    # Values that float32 holds exactly (ratings on a 1-5 or half-star scale) are streamed
    # as float32: half the memory traffic, and every product is still formed and summed in
    # float64, so the result is bit-identical to the float64 path.
    v32 = values.astype(np.float32)
    if np.array_equal(v32, values):
        values = v32
    # user-major (csr) layout with the transformed values, and its item-major transpose
    csr = matrix.csr
    by_user = (csr.indptr, csr.indices, values)
    perm = _csc_permutation(matrix)
    csc = matrix.csc
    by_item = (csc.indptr, csc.indices, values[perm])
    a, t = (by_item, by_user) if kind == "item" else (by_user, by_item)

    if mode == _kernels.MODE_DOT:
        sq = np.bincount(
            np.repeat(np.arange(n), np.diff(a[0])),
            weights=np.square(a[2], dtype=np.float64),
            minlength=n,
        )
        with np.errstate(divide="ignore"):
            inv_norm = np.where(sq > 0, 1.0 / np.sqrt(sq), 0.0)
    else:
        inv_norm = np.zeros(1)
    return a, t, mode, inv_norm


def _a_to_t(matrix: RatingMatrix, kind: str) -> np.ndarray:
    """Position in the transpose of each entry of the rows of ``kind`` (csc entry p is csr
    entry perm[p]), so the symmetric pass starts each column right after the row."""
    perm = _csc_permutation(matrix)
    if kind == "item":
        return perm

    def make():
        inverse = np.empty_like(perm)
        inverse[perm] = np.arange(perm.size, dtype=perm.dtype)
        return inverse

    return matrix._cached("csr_to_csc", make)


# -- the symmetric pass in shards ------------------------------------------------------------
def pair_work(matrix: RatingMatrix, *, kind: str) -> np.ndarray:
    """float64 (n_rows,): the symmetric pass's work on each row, in the kernel's units.

    Row i meets the rows j > i sharing a feature with it: one visit per shared feature,
    then (for a row whose visits reach a quarter of the rows, which the kernel finalises
    by a scan) one step per later row. Early rows have the most work.
    """
    n = _check(matrix, kind, "cosine", 1)
    if n == 0:
        return np.zeros(0)
    a_indptr = matrix.csc.indptr if kind == "item" else matrix.csr.indptr
    t_indptr = matrix.csr.indptr if kind == "item" else matrix.csc.indptr
    t_features = matrix.csc.indices if kind == "item" else matrix.csr.indices
    # entry p of row i, feature f, sits at a_to_t[p] in f's column; the later rows follow it
    column_end = t_indptr[1:][t_features]
    later = column_end - _a_to_t(matrix, kind) - 1
    done = np.concatenate([[0.0], np.cumsum(later, dtype=np.float64)])
    visits = done[a_indptr[1:]] - done[a_indptr[:-1]]
    scans = np.where(visits * 4 >= n, n - 1 - np.arange(n), 0)
    return visits + scans


def pair_ranges(work: np.ndarray, shards: int) -> list[tuple[int, int]]:
    """At most ``shards`` consecutive row ranges covering all rows, of about equal total
    ``work`` (:func:`pair_work`), none empty."""
    n = work.size
    if n == 0:
        return [(0, 0)]
    shards = max(1, min(int(shards), n))
    done = np.cumsum(work)
    total = done[-1]
    if total <= 0:
        cuts = np.linspace(0, n, shards + 1).round().astype(int)
    else:
        # the first row where each share of the work is complete
        cuts = np.searchsorted(done, total * np.arange(1, shards) / shards, side="left") + 1
        cuts = np.concatenate([[0], cuts, [n]])
    cuts = np.unique(np.clip(cuts, 0, n))
    return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def compute_neighbour_pairs(
    matrix: RatingMatrix,
    *,
    rows: tuple[int, int],
    kind: str = "item",
    measure: str = "cosine",
    k: int = 50,
    shrinkage: float = 100.0,
    min_support: int = 1,
    baselines: Baselines | None = None,
    co_rated_norms: bool = False,
    n_threads: int | None = None,
) -> Neighbours:
    """One shard of the symmetric pass: the pairs (i, j > i) with i in ``rows``, each
    computed once, as partial top-k lists of every row they touch.

    Returns float64 lists for rows ``rows[0] .. n_rows - 1`` (``offset=rows[0]``; earlier
    rows meet none of the shard's pairs). The shards of a cover of all rows (e.g.
    :func:`pair_ranges`), merged by :func:`merge_neighbours`, equal
    :func:`compute_neighbours` over all rows, scores to the bit and ties in the same order,
    at half its work: each pair is computed once, not from both sides. Arguments as for
    :func:`compute_neighbours`.
    """
    n = _check(matrix, kind, measure, k)
    start, stop = int(rows[0]), int(rows[1])
    if not 0 <= start <= stop <= n:
        raise ValueError(f"rows {rows} out of range for {n} rows")
    a, t, mode, inv_norm = _kernel_inputs(matrix, kind, measure, baselines, co_rated_norms)
    threads = _threads(n_threads)
    import numba

    old = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        idx, sc, sup = _kernels.topk_similar_all(
            *a, *t, n, k, mode, inv_norm, float(shrinkage), int(min_support), threads,
            _block_cols(mode), _a_to_t(matrix, kind), start, stop,
        )  # fmt: skip
    finally:
        numba.set_num_threads(old)
    return Neighbours(indices=idx, scores=sc, support=sup, offset=start, kind=kind, measure=measure)


def merge_neighbours(
    parts: list[Neighbours], *, rows: tuple[int, int], k: int, dtype=np.float32
) -> Neighbours:
    """The final top-k lists of rows ``rows`` from the partial lists of shards
    (:func:`compute_neighbour_pairs`): each row's best k of all its candidates, score
    descending, then index ascending (the order of every neighbour kernel). Rows outside
    a part contribute nothing from it. Partial lists must carry float64 scores, so the
    order is decided on the same numbers as in one run."""
    start, stop = int(rows[0]), int(rows[1])
    if not parts:
        raise ValueError("no partial lists to merge")
    n_out = max(0, stop - start)
    pieces = []
    for part in parts:
        if part.scores.dtype != np.float64:
            raise ValueError("partial lists must have float64 scores")
        lo = max(start, part.offset)
        hi = min(stop, part.offset + part.n_rows)
        if lo >= hi:
            continue
        width = part.k
        idx = np.full((n_out, width), -1, dtype=np.int32)
        sc = np.full((n_out, width), np.nan)
        sup = np.zeros((n_out, width), dtype=np.int32)
        src = slice(lo - part.offset, hi - part.offset)
        idx[lo - start : hi - start] = part.indices[src]
        sc[lo - start : hi - start] = part.scores[src]
        sup[lo - start : hi - start] = part.support[src]
        pieces.append((idx, sc, sup))
    if pieces:
        idx, sc, sup = _kernels.topk_merge(
            np.concatenate([p[0] for p in pieces], axis=1),
            np.concatenate([p[1] for p in pieces], axis=1),
            np.concatenate([p[2] for p in pieces], axis=1),
            k,
        )
    else:
        idx = np.full((n_out, k), -1, dtype=np.int32)
        sc = np.full((n_out, k), np.nan)
        sup = np.zeros((n_out, k), dtype=np.int32)
    return Neighbours(
        indices=idx,
        scores=sc.astype(dtype, copy=False),
        support=sup,
        offset=start,
        kind=parts[0].kind,
        measure=parts[0].measure,
    )


def _run_kernel(
    a, t, start, stop, n, k, mode, inv_norm, shrinkage, min_support, threads, chunks, a_to_t
):
    import numba

    old = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        if a_to_t is not None:
            # a full run: each symmetric pair once, offered to both rows
            return _kernels.topk_similar_all(
                a[0],
                a[1],
                a[2],
                t[0],
                t[1],
                t[2],
                n,
                k,
                mode,
                inv_norm,
                shrinkage,
                min_support,
                threads,
                _block_cols(mode),
                a_to_t,
                0,
                n,
            )
        return _kernels.topk_similar_rows(
            a[0],
            a[1],
            a[2],
            t[0],
            t[1],
            t[2],
            start,
            stop,
            n,
            k,
            mode,
            inv_norm,
            shrinkage,
            min_support,
            chunks,
        )
    finally:
        numba.set_num_threads(old)


def _block_cols(mode):
    """Columns per cache block for dense rows in full runs (the kernel supports blocking).

    Blocking keeps the scattered sums in L2, but every block restarts every feature's
    column segment at a random place in memory; on this machine that cost more than it
    saved (synthetic 25M item-item, 16k-column blocks: 82.6 CPU s against 67.8 without),
    so by default a row is one block.
    """
    return 1 << 30


def _threads(n_threads):
    import numba

    if n_threads is None:
        return numba.config.NUMBA_NUM_THREADS
    return max(1, min(int(n_threads), numba.config.NUMBA_NUM_THREADS, os.cpu_count() or 1))


def _csc_permutation(matrix: RatingMatrix) -> np.ndarray:
    """Positions in csr.data of each csc entry (so per-entry values can be re-laid out)."""

    def make():
        import scipy.sparse as sp

        csr = matrix.csr
        # carry each entry's csr position through scipy's O(nnz) csr -> csc conversion
        # (an argsort of the column indices gives the same permutation, in O(nnz log nnz))
        pos = sp.csr_matrix(
            (np.arange(csr.nnz, dtype=np.int64), csr.indices, csr.indptr), shape=csr.shape
        ).tocsc()
        pos.sort_indices()
        return np.asarray(pos.data, dtype=np.int64)

    return matrix._cached("csc_perm", make)


def concat_neighbours(parts: list[Neighbours]) -> Neighbours:
    """Join contiguous shards (in any order) into one Neighbours."""
    if not parts:
        raise ValueError("no shards")
    parts = sorted(parts, key=lambda p: p.offset)
    for a, b in zip(parts, parts[1:], strict=False):
        if a.offset + a.n_rows != b.offset:
            raise ValueError("shards are not contiguous")
    return Neighbours(
        indices=np.concatenate([p.indices for p in parts]),
        scores=np.concatenate([p.scores for p in parts]),
        support=np.concatenate([p.support for p in parts]),
        offset=parts[0].offset,
        kind=parts[0].kind,
        measure=parts[0].measure,
    )
