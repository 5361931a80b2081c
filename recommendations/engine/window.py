"""What was being rated while the user was active: each item's rating count in a time window
around the user's own ratings.

``W[u, j] = log(1 + #{ratings (v, j, t) with first_u - before <= t <= last_u + after})``
where ``first_u`` / ``last_u`` are user u's first and last rating times (seconds) and
``before`` / ``after`` are given in days. Every rating counts once, whatever its score and
whoever made it (the user's own ratings too: the part is standardised per user and the
rated items are never ranked).

Why: a user rates what is being watched when they are active. MovieLens 100k's ``ua.test``
holds 10 random ratings of each user (not the last ones), all made inside the user's own
active span, so an item rated by many people in those weeks is more likely among them.
On ml100k-ua, added to the product blend's scores (z-scored, one weight for every user,
scratch measure on the test split): window 30 days before to 0 after 0.3273 -> 0.3289;
1/7/90 days either side 0.3278 / 0.3290 / 0.3280; a look at the test, not a tuning. The
blend's validation carve gives it weight 0 (evaluate ``product-window`` 0.3273), so it
is not the product's (bench/README, ninth round).

An unknown user (-1), or a user without ratings, is scored over the data's last window
(``before + after`` days up to the last rating): what is being rated now, which is what a
live user who has just rated sees.

Cost: per user, two binary searches per item in that item's sorted times:
``O(n_items log(ratings per item))``; memory one float64 time a rating, by item.
"""

from __future__ import annotations

import numba
import numpy as np

from .matrix import RatingMatrix

__all__ = ["Window"]

DAY = 86400.0


class Window:
    """Learned state: ``indptr_`` int64 (n_items + 1,) and ``times_`` float64 (nnz,) each
    item's rating times ascending; ``first_`` / ``last_`` float64 (n_users,) each user's
    first and last rating time (NaN without ratings); ``end_`` the data's last time."""

    def __init__(self, *, before: float = 30.0, after: float = 0.0):
        self.before = before
        self.after = after

    def fit(self, matrix: RatingMatrix, times: np.ndarray) -> Window:
        """``times``: seconds (nnz,) aligned with ``matrix.csr.data``."""
        times = np.asarray(times, dtype=np.float64)
        if times.size != matrix.nnz:
            raise ValueError(f"{times.size} times for {matrix.nnz} ratings")
        csr = matrix.csr
        cols = csr.indices
        order = np.lexsort((times, cols))
        self.times_ = times[order]
        self.indptr_ = np.zeros(matrix.n_items + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols, minlength=matrix.n_items), out=self.indptr_[1:])
        counts = np.diff(csr.indptr)
        has = counts > 0
        self.first_ = np.full(matrix.n_users, np.nan)
        self.last_ = np.full(matrix.n_users, np.nan)
        if times.size:
            starts = csr.indptr[:-1][has]
            self.first_[has] = np.minimum.reduceat(times, starts)
            self.last_[has] = np.maximum.reduceat(times, starts)
        self.end_ = float(times.max()) if times.size else 0.0
        self.n_items_ = matrix.n_items
        return self

    def bounds(self, users) -> tuple[np.ndarray, np.ndarray]:
        """float64 (lo, hi) each user's window in seconds (users: indices, -1 unknown)."""
        users = np.asarray(users, dtype=np.int64)
        known = users >= 0
        first = np.where(known, self.first_[np.where(known, users, 0)], np.nan)
        last = np.where(known, self.last_[np.where(known, users, 0)], np.nan)
        none = np.isnan(first)
        span = (self.before + self.after) * DAY
        lo = np.where(none, self.end_ - span, first - self.before * DAY)
        hi = np.where(none, self.end_, last + self.after * DAY)
        return lo, hi

    def score(self, users) -> np.ndarray:
        """float64 (len(users), n_items) for user indices of the fitted matrix."""
        lo, hi = self.bounds(users)
        return window_counts(self.indptr_, self.times_, lo, hi)


def window_counts(indptr, times, lo, hi) -> np.ndarray:
    """float64 (len(lo), n_items): log(1 + ratings of each item with lo <= t <= hi), each
    item's ``times[indptr[j]:indptr[j + 1]]`` sorted ascending."""
    out = np.empty((np.asarray(lo).size, indptr.size - 1))
    _counts(indptr, times, np.asarray(lo, np.float64), np.asarray(hi, np.float64), out)
    return out


@numba.njit(cache=True, parallel=True)
def _counts(indptr, times, lo, hi, out):  # pragma: no cover - numba
    for j in numba.prange(indptr.size - 1):
        t = times[indptr[j] : indptr[j + 1]]
        a = np.searchsorted(t, lo, side="left")
        b = np.searchsorted(t, hi, side="right")
        for q in range(lo.size):
            out[q, j] = np.log1p(b[q] - a[q])
