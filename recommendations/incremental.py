"""The model a worker patches after each rating, so an update costs what the rating touches.

:class:`PatchableModel` holds one version's ratings (user-major and item-major) with the
values the neighbour lists are computed from: BM25 weights for the ranking lists ("uu",
"ii") and baseline residuals for the prediction lists ("ip"). A rating replaces its
user's row in an overlay (the base arrays, from the snapshot, are never copied or
rewritten); a user or item the version has never seen is appended. The rows an update
writes are then computed from that user's row and the changed items' columns alone:

- the user's "uu" row: one sparse product of their weights against the item-major index;
- an item's "ii" and "ip" rows: its raters' rows (its column), summed.

What is held fixed until the next full recompute: each item's BM25 idf and the mean
profile length (from the snapshot's counts; an item new since has the idf of an item
nobody had rated), and the baselines (global mean, user and item biases; 0 for a user or
item new since). A user's own profile length is their live one. With these held fixed the
rows equal what a full recompute computes from the same ratings (the tests check it on
random data); the next full recompute refits them. Rows not rewritten (other users' and
items' lists that a rating would shift a little) stay as they were until then.

Each worker process patches its own copy: an update sees the ratings of every update
*this* process made since the snapshot, not those another process made (they reach it at
the next full recompute).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recommendations.engine import Baselines, RatingMatrix, _kernels
from recommendations.engine.similarity import _csc_permutation as similarity_csc_permutation

# bm25_weight's defaults (recommendations.engine.topn); a test checks the two agree.
BM25_K1, BM25_B = 100.0, 0.8


class PatchableModel:
    """One version's ratings and neighbour-list inputs, patched in place by updates.

    Indices: users ``0..n_users-1`` and items ``0..n_items-1``; those past the base
    matrix's are appended (new since the snapshot). Every list this returns is in database
    ids.
    """

    def __init__(
        self, matrix: RatingMatrix, ranking: RatingMatrix, baselines: Baselines, derived=None
    ):
        """``derived(name, make)`` keeps the arrays made from the base (see
        ``build.ModelInputs.from_snapshot``); by default they are made in memory."""
        derived = derived or (lambda name, make: make())
        csr = matrix.csr
        self.base = matrix
        self.n_users_base, self.n_items_base = matrix.shape
        counts = matrix.item_counts
        self.idf = np.log(max(matrix.n_users, 1)) - np.log1p(counts.astype(np.float64))
        self.avg_len = max(float(matrix.user_counts.mean()) if matrix.n_users else 0.0, 1e-12)
        self.mu = float(baselines.global_mean_)
        self.bu = np.asarray(baselines.user_bias_, dtype=np.float64)
        self.bi = np.asarray(baselines.item_bias_, dtype=np.float64)
        # Base values, aligned with csr.data: BM25 weights and residuals.
        self.w = ranking.csr.data
        self.e = derived("residuals", lambda: baselines.residuals(matrix))
        # Item-major weights: the transpose as CSR (items x users), on the CSC structure.
        csc = matrix.csc
        by_item = derived("bm25_by_item", lambda: self.w[similarity_csc_permutation(matrix)])
        self.w_by_item = sp.csr_matrix((matrix.n_items, matrix.n_users), dtype=np.float64)
        self.w_by_item.data, self.w_by_item.indices = by_item, csc.indices
        self.w_by_item.indptr = csc.indptr
        rows = np.repeat(np.arange(matrix.n_users), matrix.user_counts)
        self.user_sq = np.bincount(rows, weights=self.w**2, minlength=matrix.n_users)
        self.item_sq = np.bincount(csr.indices, weights=self.w**2, minlength=matrix.n_items)
        self.user_ids = np.asarray(matrix.user_ids)
        self.item_ids = np.asarray(matrix.item_ids)
        self._new_users: dict[int, int] = {}
        self._new_items: dict[int, int] = {}
        # Replaced rows: user index -> (item indices sorted, scores, weights, residuals).
        self.rows: dict[int, tuple[np.ndarray, ...]] = {}
        # Which users' base rows are stale (replaced, or new), and item -> replaced rows
        # rating it now: so an update visits only the replaced rows it meets.
        self._replaced = np.zeros(self.n_users_base, dtype=bool)
        self._raters: dict[int, set[int]] = {}

    @classmethod
    def from_inputs(cls, inputs) -> PatchableModel:
        """From ``build.ModelInputs`` (the raw matrix, its BM25 weights, its baselines)."""
        return cls(inputs.matrix, inputs.ranking, inputs.baselines, inputs.derived)

    # -- ids and indices --------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return self.user_ids.size

    @property
    def n_items(self) -> int:
        return self.item_ids.size

    def user_index(self, user_id: int, *, add: bool = False) -> int | None:
        u = self.base.user_index(user_id)
        if u is None:
            u = self._new_users.get(int(user_id))
        if u is None and add:
            u = self._new_users[int(user_id)] = self.n_users
            self.user_ids = np.append(self.user_ids, np.int64(user_id))
            self.bu = np.append(self.bu, 0.0)
            self.user_sq = np.append(self.user_sq, 0.0)
            self._replaced = np.append(self._replaced, True)
        return u

    def item_indices(self, item_ids, *, add: bool = False) -> np.ndarray:
        ids = np.asarray(item_ids, dtype=np.int64)
        out = self.base.item_indices(ids)
        for p in np.flatnonzero(out < 0).tolist():
            j = self._new_items.get(int(ids[p]))
            if j is None and add:
                j = self._new_items[int(ids[p])] = self.n_items
                self.item_ids = np.append(self.item_ids, ids[p])
                # Nobody had rated it at the snapshot: the idf of a count of 0.
                self.idf = np.append(self.idf, np.log(max(self.n_users_base, 1)))
                self.bi = np.append(self.bi, 0.0)
                self.item_sq = np.append(self.item_sq, 0.0)
            out[p] = -1 if j is None else j
        return out

    # -- rows ---------------------------------------------------------------------------
    def user_row(self, u: int) -> tuple[np.ndarray, ...]:
        """(item indices, scores, weights, residuals) of user ``u`` as patched."""
        if u in self.rows:
            return self.rows[u]
        if u >= self.n_users_base:
            empty = np.empty(0)
            return np.empty(0, np.int64), empty, empty, empty
        a, b = self.base.csr.indptr[u], self.base.csr.indptr[u + 1]
        return (
            self.base.csr.indices[a:b].astype(np.int64),
            self.base.csr.data[a:b],
            self.w[a:b],
            self.e[a:b],
        )

    def set_user_ratings(self, user_id: int, item_ids, scores) -> int:
        """Replace the user's row with these ratings (appending the user and any new item);
        returns the user's index. Costs O(the user's ratings)."""
        u = self.user_index(user_id, add=True)
        items = self.item_indices(item_ids, add=True)
        scores = np.asarray(scores, dtype=np.float64)
        order = np.argsort(items, kind="stable")
        items, scores = items[order], scores[order]
        # BM25 as recommendations.engine.bm25_weight, with idf and mean length held fixed.
        length = items.size / self.avg_len
        w = scores * (BM25_K1 + 1) / (BM25_K1 * (1 - BM25_B + BM25_B * length) + scores)
        w = w * self.idf[items]
        e = scores - (self.mu + self.bu[u] + self.bi[items])
        old_items, _, old_w, _ = self.user_row(u)
        np.subtract.at(self.item_sq, old_items, old_w**2)
        np.add.at(self.item_sq, items, w**2)
        self.user_sq[u] = float(np.sum(w**2))
        if u in self.rows:
            for j in old_items.tolist():
                self._raters[j].discard(u)
        for j in items.tolist():
            self._raters.setdefault(j, set()).add(u)
        self._replaced[u] = True
        self.rows[u] = (items, scores, w, e)
        return u

    def user_neighbours(self, u: int, k: int):
        """Top-``k`` users by cosine of BM25 weights with user ``u``: (ids, scores, support),
        as ``compute_neighbours(kind="user", measure="cosine")`` ranks them."""
        items, _, w, _ = self.user_row(u)
        dots = np.zeros(self.n_users)
        support = np.zeros(self.n_users)
        base = items < self.n_items_base
        if base.any():
            # One sparse product against the item-major index: every base user at once.
            t = self.w_by_item
            dots[: self.n_users_base], support[: self.n_users_base] = _kernels.row_dots(
                t.indptr, t.indices, t.data, items[base], w[base], self.n_users_base
            )
        if self.rows:
            # Replaced rows: their base entries are stale, their current rows count instead
            # (only those sharing an item with this user can count).
            dots[self._replaced] = 0.0
            support[self._replaced] = 0.0
            mine = np.zeros(self.n_items)
            mine[items] = w
            rated = np.zeros(self.n_items, dtype=bool)
            rated[items] = True
            others = set().union(*(self._raters.get(j, ()) for j in items.tolist()))
            for v in others:
                their_items, _, their_w, _ = self.rows[v]
                dots[v] = float(np.dot(their_w, mine[their_items]))
                support[v] = float(np.count_nonzero(rated[their_items]))
        with np.errstate(divide="ignore"):
            inv = np.where(self.user_sq > 0, 1.0 / np.sqrt(self.user_sq), 0.0)
        scores = dots * (inv[u] * inv)
        valid = (support > 0) & (inv[u] * inv > 0)
        valid[u] = False
        return self._top(valid, scores, support, k, self.user_ids)

    def item_rows(self, i: int, *, k_cosine: int, k_pearson: int, shrinkage: float):
        """Item ``i``'s two lists from its raters' rows: (top ``k_cosine`` by cosine of BM25
        weights, top ``k_pearson`` by shrunk pearson_baseline), each (ids, scores, support),
        as ``compute_neighbours(kind="item")`` ranks them."""
        base_users = np.empty(0, np.int64)
        if i < self.n_items_base:
            # Its base raters (the column), less those whose rows were replaced since.
            csc = self.base.csc
            base_users = csc.indices[csc.indptr[i] : csc.indptr[i + 1]].astype(np.int64)
            base_users = base_users[~self._replaced[base_users]]
        csr = self.base.csr
        n = self.n_items
        sums = np.zeros((n, 5))
        if base_users.size:
            nb = self.n_items_base
            sums[:nb] = _kernels.column_sums(
                csr.indptr, csr.indices, self.w, self.e, base_users, i, nb
            )
        sxy_w, sxy, sxx, syy, cnt = (sums[:, c].copy() for c in range(5))
        for v in self._raters.get(i, ()):  # replaced rows that rate item i now
            items, _, w, e = self.rows[v]
            p = np.searchsorted(items, i)
            sxy_w[items] += w[p] * w
            sxy[items] += e[p] * e
            sxx[items] += e[p] ** 2
            syy[items] += e**2
            cnt[items] += 1
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(self.item_sq > 0, 1.0 / np.sqrt(self.item_sq), 0.0)
            cosine = sxy_w * (inv[i] * inv)
            d = sxx * syy
            pearson = np.where(d > 0, sxy / np.sqrt(np.where(d > 0, d, 1.0)), np.nan)
            if shrinkage > 0:
                pearson = pearson * cnt / (cnt + shrinkage)
        rated = cnt > 0
        rated[i] = False
        return (
            self._top(rated & (inv[i] * inv > 0), cosine, cnt, k_cosine, self.item_ids),
            self._top(rated & np.isfinite(pearson), pearson, cnt, k_pearson, self.item_ids),
        )

    @staticmethod
    def _top(valid, scores, support, k, ids):
        """The best ``k`` of the valid entries: score descending, then database id (the
        engine breaks ties by index, which follows id in a matrix built from the ids)."""
        cand = np.flatnonzero(valid)
        if cand.size > k:
            # Only those scoring at least the k-th best can be in (ties kept for the sort).
            kth = np.partition(scores[cand], cand.size - k)[cand.size - k]
            cand = cand[scores[cand] >= kth]
        order = np.lexsort((ids[cand], -scores[cand]))[:k]
        top = cand[order]
        return ids[top], scores[top], support[top].astype(np.int64)
