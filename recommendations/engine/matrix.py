"""The ratings matrix with its id <-> index maps, and regularised baseline biases.

External ids (database primary keys) are arbitrary integers; matrix rows and columns are
dense indices ``0..n-1``. The maps travel with the matrix so no caller ever confuses the
two. Unknown ids are a normal case: scalar lookups return ``None`` and vectorised lookups
return ``-1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["RatingMatrix", "Baselines"]


def _index_of(sorted_ids: np.ndarray, ids) -> np.ndarray:
    """Vectorised external id -> index into ``sorted_ids``; -1 where unknown."""
    ids = np.asarray(ids, dtype=np.int64)
    if sorted_ids.size == 0:
        return np.full(ids.shape, -1, dtype=np.int64)
    pos = np.searchsorted(sorted_ids, ids)
    pos_c = np.minimum(pos, sorted_ids.size - 1)
    return np.where(sorted_ids[pos_c] == ids, pos_c, -1).astype(np.int64)


@dataclass(frozen=True, eq=False)
class RatingMatrix:
    """Users x items ratings with explicit id maps.

    Attributes:
        csr: ``scipy.sparse.csr_matrix`` of shape (n_users, n_items), dtype float64, sorted
            indices, no duplicates; a score of 0 is kept as an explicit entry, so
            ``csr.nnz`` is the number of ratings and the structure says who rated what.
        user_ids: int64 array (n_users,), ``user_ids[u]`` is the external id of row ``u``;
            sorted ascending.
        item_ids: int64 array (n_items,), external id of column ``i``; sorted ascending.
    """

    csr: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray

    @classmethod
    def from_arrays(cls, user_ids, item_ids, scores, *, users=None, items=None) -> RatingMatrix:
        """Build from equal-length arrays of (external user id, external item id, score).

        ``users`` / ``items`` optionally list extra external ids that must have a row /
        column even without ratings (e.g. the whole catalogue). When a (user, item) pair
        occurs more than once, the last occurrence wins.
        """
        u = np.asarray(user_ids, dtype=np.int64).ravel()
        i = np.asarray(item_ids, dtype=np.int64).ravel()
        s = np.asarray(scores, dtype=np.float64).ravel()
        if not (u.shape == i.shape == s.shape):
            raise ValueError("user_ids, item_ids and scores must have the same length")
        if not np.all(np.isfinite(s)):
            raise ValueError("scores must be finite")
        uid = np.unique(u if users is None else np.concatenate([u, np.asarray(users, np.int64)]))
        iid = np.unique(i if items is None else np.concatenate([i, np.asarray(items, np.int64)]))
        rows = np.searchsorted(uid, u)
        cols = np.searchsorted(iid, i)
        # Stable sort by (row, col) keeps input order inside a duplicate group, so taking
        # the last of each group implements "last occurrence wins".
        order = np.lexsort((cols, rows))
        rows, cols, s = rows[order], cols[order], s[order]
        if rows.size:
            last = np.ones(rows.size, dtype=bool)
            last[:-1] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
            rows, cols, s = rows[last], cols[last], s[last]
        indptr = np.zeros(uid.size + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=uid.size), out=indptr[1:])
        csr = sp.csr_matrix(
            (s, cols.astype(np.int32), indptr.astype(np.int32 if s.size < 2**31 else np.int64)),
            shape=(uid.size, iid.size),
        )
        csr.has_sorted_indices = True
        return cls(csr=csr, user_ids=uid, item_ids=iid)

    # -- shape and lookups -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return self.csr.shape

    @property
    def n_users(self) -> int:
        return self.csr.shape[0]

    @property
    def n_items(self) -> int:
        return self.csr.shape[1]

    @property
    def nnz(self) -> int:
        return self.csr.nnz

    def user_index(self, user_id) -> int | None:
        """Row of an external user id, or None when the user has no row."""
        idx = int(_index_of(self.user_ids, [user_id])[0])
        return None if idx < 0 else idx

    def item_index(self, item_id) -> int | None:
        """Column of an external item id, or None when the item has no column."""
        idx = int(_index_of(self.item_ids, [item_id])[0])
        return None if idx < 0 else idx

    def user_indices(self, user_ids) -> np.ndarray:
        """Vectorised :meth:`user_index`: int64 array, -1 for unknown ids."""
        return _index_of(self.user_ids, user_ids)

    def item_indices(self, item_ids) -> np.ndarray:
        """Vectorised :meth:`item_index`: int64 array, -1 for unknown ids."""
        return _index_of(self.item_ids, item_ids)

    # -- derived views (cached on first use; the matrix is immutable) -------------------
    def _cached(self, name, make):
        cache = self.__dict__.setdefault("_cache", {})
        if name not in cache:
            cache[name] = make()
        return cache[name]

    @property
    def csc(self) -> sp.csc_matrix:
        """The same matrix in CSC form (item -> users), sorted indices."""

        def make():
            m = self.csr.tocsc()
            m.sort_indices()
            return m

        return self._cached("csc", make)

    @property
    def item_major(self) -> sp.csr_matrix:
        """Items x users CSR (the transpose), sorted indices."""

        def make():
            c = self.csc
            return sp.csr_matrix((c.data, c.indices, c.indptr), shape=(self.n_items, self.n_users))

        return self._cached("item_major", make)

    @property
    def global_mean(self) -> float:
        """Mean of all scores (0.0 for an empty matrix)."""
        return float(self.csr.data.mean()) if self.nnz else 0.0

    @property
    def user_counts(self) -> np.ndarray:
        """int64 (n_users,): number of ratings per user."""
        return np.diff(self.csr.indptr).astype(np.int64)

    @property
    def item_counts(self) -> np.ndarray:
        """int64 (n_items,): number of ratings per item."""
        # (from the CSR's columns: no CSC made and cached for this alone, 300 MB at 25M)
        return self._cached(
            "item_counts",
            lambda: np.bincount(self.csr.indices, minlength=self.n_items).astype(np.int64),
        )

    @property
    def user_means(self) -> np.ndarray:
        """float64 (n_users,): mean score per user; the global mean where a user has none."""

        def make():
            rows = np.repeat(np.arange(self.n_users), self.user_counts)
            sums = np.bincount(rows, weights=self.csr.data, minlength=self.n_users)
            return _safe_mean(sums, self.user_counts, self.global_mean)

        return self._cached("user_means", make)

    @property
    def item_means(self) -> np.ndarray:
        """float64 (n_items,): mean score per item; the global mean where an item has none."""

        def make():
            sums = np.bincount(self.csr.indices, weights=self.csr.data, minlength=self.n_items)
            return _safe_mean(sums, self.item_counts, self.global_mean)

        return self._cached("item_means", make)

    def user_row(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        """(item indices int32 sorted, scores float64) of user row ``u``."""
        a, b = self.csr.indptr[u], self.csr.indptr[u + 1]
        return self.csr.indices[a:b], self.csr.data[a:b]


def _safe_mean(sums, counts, default):
    sums = np.asarray(sums, dtype=np.float64)
    out = np.full(counts.shape, default, dtype=np.float64)
    nz = counts > 0
    out[nz] = sums[nz] / counts[nz]
    return out


class Baselines:
    """Regularised baseline biases: ``b_ui = mu + b_u + b_i``.

    ``method="als"`` alternates closed-form updates, items first then users, exactly as
    Surprise's ``baseline_als`` (``b_i = sum(r - mu - b_u) / (reg_item + n_i)``, then
    ``b_u = sum(r - mu - b_i) / (reg_user + n_u)``), so with its defaults (10 epochs,
    reg_item=10, reg_user=15) the biases equal Surprise's to float rounding.
    ``method="sgd"`` runs plain SGD over the ratings in matrix order (Surprise's
    ``baseline_sgd`` visits them in its own trainset order, so values differ slightly).

    Learned state: ``global_mean_`` (float), ``user_bias_`` float64 (n_users,),
    ``item_bias_`` float64 (n_items,).
    """

    def __init__(
        self,
        *,
        method: str = "als",
        n_epochs: int = 10,
        reg_user: float = 15.0,
        reg_item: float = 10.0,
        learning_rate: float = 0.005,
        reg: float = 0.02,
    ):
        self.method = method
        self.n_epochs = n_epochs
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.learning_rate = learning_rate
        self.reg = reg

    def fit(self, matrix: RatingMatrix) -> Baselines:
        if self.method not in ("als", "sgd"):
            raise ValueError(f"unknown baseline method {self.method!r}")
        csr, csc = matrix.csr, matrix.csc
        mu = matrix.global_mean
        bu = np.zeros(matrix.n_users)
        bi = np.zeros(matrix.n_items)
        if self.method == "als":
            n_u = matrix.user_counts
            n_i = matrix.item_counts
            for _ in range(self.n_epochs):
                dev_i = np.bincount(
                    csr.indices, weights=csr.data - mu - np.repeat(bu, n_u), minlength=bi.size
                )
                bi = dev_i / (self.reg_item + n_i)
                dev_u = np.bincount(
                    csc.indices, weights=csc.data - mu - np.repeat(bi, n_i), minlength=bu.size
                )
                bu = dev_u / (self.reg_user + n_u)
        else:
            from ._kernels import baseline_sgd

            rows = np.repeat(np.arange(matrix.n_users), matrix.user_counts)
            baseline_sgd(
                rows, csr.indices, csr.data, mu, bu, bi, self.n_epochs, self.learning_rate, self.reg
            )
        self.global_mean_ = mu
        self.user_bias_ = bu
        self.item_bias_ = bi
        return self

    def predict(self, users, items) -> np.ndarray:
        """Vectorised ``mu + b_u + b_i``; an index of -1 (unknown) contributes no bias.

        Args:
            users, items: int arrays of equal shape (user / item indices or -1).
        Returns:
            float64 array of the same shape.
        """
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = np.full(np.broadcast(users, items).shape, self.global_mean_)
        out += np.where(users >= 0, self.user_bias_[np.maximum(users, 0)], 0.0)
        out += np.where(items >= 0, self.item_bias_[np.maximum(items, 0)], 0.0)
        return out

    def residuals(self, matrix: RatingMatrix) -> np.ndarray:
        """float64 (nnz,): ``r_ui - b_ui`` aligned with ``matrix.csr.data``."""
        rows = np.repeat(np.arange(matrix.n_users), matrix.user_counts)
        return matrix.csr.data - self.predict(rows, matrix.csr.indices)
