"""Learned item-item weights: EASE (Steck 2019) and a top-K sparse variant for big catalogues.

EASE solves ``min_B ||X - X B||^2 + lam ||B||^2`` subject to ``diag(B) = 0`` on the binary
users x items matrix X. The problem separates by column: column j is the ridge regression
of item j's column on every other item's, ``B[-j, j] = (G[-j,-j] + lam I)^-1 G[-j, j]`` with
``G = X^T X``, which the closed form ``P = (G + lam I)^-1, B = -P / diag(P)`` solves for all
columns at once. A user's scores are the sparse product of their binary row with B, so a
new rating changes what the user sees with one row-times-matrix product (no refit).

:class:`EASE` forms the dense inverse over at most ``max_items`` (the most-rated) items:
fine up to ~15k items (1.8 GB float64). :class:`TopKEASE` solves each column over only
its ``k`` nearest items by cosine on the binary matrix (our exact neighbour kernel),
with the Gram entries between two neighbours taken from the symmetric union of the
neighbour lists (a pair in neither list counts as 0 co-occurrences). Memory is O(n_items
k) plus one k x k system per thread, so 60k items fit;
with ``k >= n_items - 1`` every pair is known and it equals :class:`EASE`.

Measured, and why :class:`TopKEASE` is not the product's choice: on ``ml100k-ua`` with
k = 200 of 1,682 items, 17% of the neighbour pairs are in neither list, and setting them to
0 co-occurrences changes the solution completely (correlation 0.39 with EASE's column for
item 0, NDCG@10 0.018 against EASE's 0.309); the same columns solved with the exact Gram
block correlate 0.99. Exact blocks cost O(k^2) co-occurrence counts per item, too slow at
60k items, so the head-restricted dense :class:`EASE` is used instead.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from .matrix import RatingMatrix
from .similarity import compute_neighbours

__all__ = ["EASE", "MIDPOINT", "TopKEASE", "binary_rows", "weighted_rows"]

# The rating scale's middle (1-5 stars): ``centred`` weighting's zero.
MIDPOINT = 3.0


def weighted_rows(rows, weighting: str = "binary", *, own: bool = False) -> sp.csr_matrix:
    """float64 CSR of the same structure: 1.0 per rating (``binary``), the score
    (``rating``) or the score minus the scale's midpoint :data:`MIDPOINT` (``centred``: a
    1-2 star rating counts against, a 3 as nothing). ``own``: ``rows`` is a CSR copy the
    caller owns, weighted in place rather than copied again (memory: one copy of the
    ratings at a time)."""
    if weighting not in ("binary", "rating", "centred"):
        raise ValueError(f"unknown weighting {weighting!r}")
    if own:
        if rows.dtype != np.float64:
            rows = rows.astype(np.float64)
        if weighting == "binary":
            rows.data[:] = 1.0
        elif weighting == "centred":
            rows.data -= MIDPOINT
        return rows
    if weighting == "binary":
        return binary_rows(rows)
    out = sp.csr_matrix(rows, dtype=np.float64, copy=True)
    if weighting == "centred":
        out.data -= MIDPOINT
    return out


def binary_rows(rows) -> sp.csr_matrix:
    """float64 CSR of the same shape with 1.0 on every stored entry (rated = 1)."""
    rows = sp.csr_matrix(rows)
    return sp.csr_matrix(
        (np.ones(rows.nnz), rows.indices.copy(), rows.indptr.copy()), shape=rows.shape
    )


# Rows of B pruned at a time (EASE.fit): 256 x 5,000 float64 is 10 MB.
_ROWS = 256


def gram(x) -> np.ndarray:
    """float64 dense ``x.T @ x`` of a CSR ``x`` (n_rows, h): the same floats as scipy's
    ``(x.T @ x).toarray()`` (each entry summed over the rows in ascending order, as its
    product does), accumulated straight into the dense result. scipy's product also
    builds a sparse result as large as the dense one (at 25M ratings and a 5,000-item
    head, 300 MB beside the 200 MB result)."""
    x = sp.csr_matrix(x, dtype=np.float64)
    cols = x.tocsc()  # (a column's rows ascending, as x.T's rows in scipy's product)
    cols.sort_indices()
    h = x.shape[1]
    out = np.zeros((h, h))
    _gram_into(cols.indptr, cols.indices, cols.data, x.indptr, x.indices, x.data, out)
    return out


@numba.njit(cache=True)
def _gram_into(cptr, crows, cdata, indptr, indices, data, out):  # pragma: no cover - numba
    """out[a] += x[u, a] x[u] over the rows u that hold column a, in ascending order:
    one dense row of the result at a time (scipy's csr_matmat order)."""
    for a in range(cptr.size - 1):
        row = out[a]
        for p in range(cptr[a], cptr[a + 1]):
            u = crows[p]
            xa = cdata[p]
            for q in range(indptr[u], indptr[u + 1]):
                row[indices[q]] += xa * data[q]


class _ItemWeights:
    """Shared scoring: ``scores = binary(rows) @ B``."""

    def score(self, rows) -> np.ndarray:
        """float64 (n_rows, n_items) scores for users given by their rating rows.

        Args:
            rows: CSR (n_rows, n_items) ratings in this model's item index space (a user's
                live ratings; the values are ignored, only who rated what counts).
        """
        out = binary_rows(rows) @ self.weights_
        return np.asarray(out.todense() if sp.issparse(out) else out)


class EASE:
    """Dense closed-form EASE over the ``max_items`` most-rated items (all by default).

    Items outside that head get no learned weights (score 0 here; the blend's ALS and
    content parts still score them). A head of 10k items costs a 0.8 GB float64 inverse,
    which is how this runs on a 60k-item catalogue, where the head holds nearly all
    ratings.

    ``weighting="rating"`` fits X = the scores instead of 1 per rating, and scores a user's
    row of scores: on ``ml100k-ua`` it reaches NDCG@10 0.330 (lambda 3000) where binary
    reaches 0.310 (lambda 300-500), which is the gap to the issue's tuned EASE (0.3305); a
    4-5 star rating then weighs more than a 1-2 star one in both the Gram and the query.

    ``keep`` > 0 prunes B to the ``keep_ = max(keep, budget // h)`` largest weights by
    magnitude of each row (a rated item's weights onto the others), the rest set to 0:
    what the product stores and scores with (a dense head of 5,000+ items squared would
    not fit a worker). ``budget`` makes the keep scale with the head: the same total of
    stored weights (``h * keep_``) and scoring work per rating (``keep_``) buy more per row
    in a small catalogue (ml100k: 297 of 1,682 at 500,000) and nothing more at the
    product's 5,000-item head.

    Measured on ``ml100k-ua`` (EASE on the scores, lambda 5000; EASE alone, then z-scored
    + 0.35 ALS, fixed weights; validation = 20% of each user's ua.base ratings,
    holdout_split seed 1; "cost" = weights read per rated item, the scoring work):

    ==============================  ====  ================  ================
    pruning                         cost  validation        test
    ==============================  ====  ================  ================
    none                            1682  0.2928 / 0.2967   0.3307 / 0.3365
    each row's 100                   100  0.2848 / 0.2903   0.3236 / 0.3290
    each row's 250                   250  0.2922 / 0.2944   0.3276 / 0.3359
    the matrix's 100 x h largest     215  0.2902 / 0.2942   0.3278 / 0.3339
    ... at most 200 a row            173  0.2897 / 0.2955   0.3270 / 0.3333
    each column's 100                100  0.2814 / 0.2920   0.3220 / 0.3296
    ==============================  ====  ================  ================

    A global threshold beats row pruning at the same number of stored weights, but not at
    the same scoring cost (its rows are uneven: the most rated items keep up to 330), so
    rows it is. The pruning's loss is bought back only with more weights per rated item.

    Learned state: ``items_`` int64 (h,) the head's item indices, ``weights_`` float64
    (h, h) with a zero diagonal (rows and columns in ``items_`` order), ``keep_`` the
    weights kept a row (0: no pruning).
    """

    def __init__(
        self,
        *,
        lam: float = 500.0,
        max_items: int | None = None,
        weighting: str = "binary",
        keep: int = 0,
        budget: int = 0,
    ):
        self.lam = lam
        self.max_items = max_items
        self.weighting = weighting
        self.keep = keep
        self.budget = budget

    def fit(self, matrix: RatingMatrix) -> EASE:
        head = np.arange(matrix.n_items)
        if self.max_items is not None and matrix.n_items > self.max_items:
            counts = np.bincount(matrix.csr.indices, minlength=matrix.n_items)  # (no CSC)
            head = np.sort(np.argsort(-counts, kind="stable")[: self.max_items])
            # (memory: the head's columns first, then weighted in that copy: one copy of
            # the ratings at a time instead of two)
            x = weighted_rows(matrix.csr[:, head], self.weighting, own=True)
        else:
            x = weighted_rows(matrix.csr, self.weighting)
        g = gram(x)
        del x
        g[np.diag_indices_from(g)] += self.lam
        p = np.linalg.inv(g)
        del g  # (memory: each dense h x h block is 200 MB at the product's 5,000 items)
        b = p  # B = -P / diag(P), in place: the same quotients without another block
        b /= -np.diag(p)
        b[np.diag_indices_from(b)] = 0.0
        keep = max(self.keep, self.budget // max(b.shape[0], 1)) if self.keep > 0 else 0
        if 0 < keep < b.shape[1]:
            # a block of rows at a time (each row's partition is its own): no (h x h)
            # magnitudes and int64 positions beside B
            for lo in range(0, b.shape[0], _ROWS):
                block = b[lo : lo + _ROWS]
                drop = np.argpartition(-np.abs(block), keep - 1, axis=1)[:, keep:]
                np.put_along_axis(block, drop, 0.0, axis=1)
        self.keep_ = keep if 0 < keep < b.shape[1] else 0
        self.items_ = head
        self.weights_ = b
        self.n_items_ = matrix.n_items
        return self

    def score(self, rows) -> np.ndarray:
        """float64 (n_rows, n_items) scores for users given by their rating rows (CSR in
        this model's item index space; with ``weighting="binary"`` only who rated what
        counts)."""
        x = weighted_rows(rows, self.weighting)
        out = np.zeros((x.shape[0], self.n_items_))
        out[:, self.items_] = x[:, self.items_] @ self.weights_
        return out


class TopKEASE(_ItemWeights):
    """EASE with each column solved over its ``k`` nearest items only.

    Learned state: ``weights_`` CSR float64 (n_items, n_items), column j holding item j's
    weights on its neighbours (at most k non-zeros per column).
    """

    def __init__(self, *, lam: float = 500.0, k: int = 200, n_threads: int | None = None):
        self.lam = lam
        self.k = k
        self.n_threads = n_threads

    def fit(self, matrix: RatingMatrix) -> TopKEASE:
        n = matrix.n_items
        xb = RatingMatrix(binary_rows(matrix.csr), matrix.user_ids, matrix.item_ids)
        counts = np.asarray(xb.csc.sum(axis=0)).ravel()
        k = max(1, min(self.k, n - 1))
        if k >= n - 1:  # every item is a candidate neighbour: the exact EASE columns
            idx = np.array([np.delete(np.arange(n), j) for j in range(n)], dtype=np.int64)
            sup = np.take_along_axis((xb.csr.T @ xb.csr).toarray(), idx, axis=1)
        else:
            nb = compute_neighbours(
                xb, kind="item", measure="cosine", k=k, shrinkage=0.0, n_threads=self.n_threads
            )
            idx, sup = nb.indices.astype(np.int64), nb.support.astype(np.float64)
        valid = idx >= 0
        # Gram entries known from either list (a co-occurrence count is symmetric, so the
        # two lists agree), as a CSR with sorted indices for binary-search lookups
        r = np.repeat(np.arange(n), valid.sum(axis=1))
        c, v = idx[valid], sup[valid]
        keys, first = np.unique(np.r_[r * n + c, c * n + r], return_index=True)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys // n, minlength=n), out=indptr[1:])
        w = _solve_columns(idx, valid, indptr, keys % n, np.r_[v, v][first], counts, self.lam)
        cols = np.repeat(np.arange(n), valid.sum(axis=1))
        self.weights_ = sp.csr_matrix((w[valid], (idx[valid], cols)), shape=(n, n))
        return self


@numba.njit(cache=True, parallel=True)
def _solve_columns(idx, valid, indptr, indices, data, diag, lam):  # pragma: no cover - numba
    n, k = idx.shape
    out = np.zeros((n, k))
    for j in numba.prange(n):
        m = 0
        for t in range(k):
            if valid[j, t]:
                m += 1
        if m == 0:
            continue
        nbr = idx[j, :m]
        a = np.zeros((m, m))
        rhs = np.zeros(m)
        for s in range(m):
            p = nbr[s]
            a[s, s] = diag[p] + lam
            rhs[s] = _lookup(indptr, indices, data, p, j)
            for t in range(s + 1, m):
                val = _lookup(indptr, indices, data, p, nbr[t])
                a[s, t] = val
                a[t, s] = val
        out[j, :m] = np.linalg.solve(a, rhs)
    return out


@numba.njit(cache=True)
def _lookup(indptr, indices, data, row, col):  # pragma: no cover - numba
    lo, hi = indptr[row], indptr[row + 1]
    while lo < hi:
        mid = (lo + hi) // 2
        if indices[mid] < col:
            lo = mid + 1
        else:
            hi = mid
    if lo < indptr[row + 1] and indices[lo] == col:
        return data[lo]
    return 0.0
