"""The model a worker patches after each rating, so an update costs what the rating touches.

:class:`PatchableModel` holds one version's ratings (user-major and item-major) with the
values the neighbour lists are computed from: BM25 weights for the ranking lists ("uu",
"ii") and baseline residuals for the prediction lists ("ip"). A rating replaces its
user's row in an overlay (the base arrays, from the snapshot, are never copied or
rewritten); a user or item the version has never seen is appended. The rows an update
writes are then computed from that user's row and the changed items' columns alone:

- the user's "uu" row: one sparse product of their weights against the item-major index;
- an item's "ii" and "ip" rows: its raters' rows (its column), summed; for a popular item
  the sums are kept once computed and patched by each later rating with the changed
  user's old and new row (``item_cache_*`` below), instead of summed again.

The kernels are compiled (numba) and read the base arrays and the replaced rows in place;
no update derives an array over all ratings, and over all users or items only a count.

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

from collections import OrderedDict

import numpy as np
import scipy.sparse as sp
from numba import njit

from recommendations.engine import Baselines, RatingMatrix, _kernels
from recommendations.engine.similarity import _csc_permutation as similarity_csc_permutation

# bm25_weight's defaults (recommendations.engine.topn); a test checks the two agree.
BM25_K1, BM25_B = 100.0, 0.8


class PatchableModel:
    """One version's ratings and neighbour-list inputs, patched in place by updates.

    Indices: users ``0..n_users-1`` and items ``0..n_items-1``; those past the base
    matrix's are appended (new since the snapshot). Every list this returns is in database
    ids.

    Replaced rows live in one append-only pool (item indices, scores, weights, residuals),
    each user's current row a segment of it, so the compiled kernels read them as arrays;
    the pool is compacted when more than half of it is rows replaced again since. The
    inverse norms of every user's and item's weights are kept, and patched for the rows
    a rating changes, so no update derives an array over all users or items.
    """

    def __init__(
        self,
        matrix: RatingMatrix,
        ranking: RatingMatrix,
        baselines: Baselines,
        derived=None,
        *,
        item_cache_bytes: int = 128 * 2**20,
        item_cache_min_raters: int = 1000,
    ):
        """``derived(name, make)`` keeps the arrays made from the base (see
        ``build.ModelInputs.from_snapshot`` and :func:`base_arrays`); by default they are
        made in memory. With them made already (the recompute's prepare step makes them,
        ``derive``), building the model costs O(users + items): mapping, no pass over the
        ratings (at 25M ratings, 10-20 ms against 0.6-1.4 s on a quiet machine).

        An item's two lists are computed from its raters' rows, which for a popular item
        is a good share of all ratings (at 10M ratings, an item drawn as ratings fall
        costs 0.9M row entries at the median and 4.5M at the 95th percentile). So the
        sums of items with at least ``item_cache_min_raters`` raters at the snapshot are
        kept once computed, up to ``item_cache_bytes`` (least recently used first out),
        and every later rating patches them with the changed user's old and new row:
        O(that row) per kept item it rates, instead of a pass over all the raters.
        """
        csc = matrix.csc
        self.base = matrix
        self.n_users_base, self.n_items_base = matrix.shape
        # Everything below over all ratings is mapped (``base_arrays``): a process loading
        # the state again after a heavy step released it does O(users + items) work.
        base = base_arrays(matrix, ranking, baselines, derived)
        counts = np.diff(csc.indptr).astype(np.int64)  # matrix.item_counts, without a pass
        self.idf = np.log(max(matrix.n_users, 1)) - np.log1p(counts.astype(np.float64))
        self.avg_len = max(float(matrix.user_counts.mean()) if matrix.n_users else 0.0, 1e-12)
        self.mu = float(baselines.global_mean_)
        self.bu = np.asarray(baselines.user_bias_, dtype=np.float64)
        self.bi = np.asarray(baselines.item_bias_, dtype=np.float64)
        # Base values, aligned with csr.data: BM25 weights and residuals.
        self.w = ranking.csr.data
        self.e = base["residuals"]
        # Item-major weights: the transpose as CSR (items x users), on the CSC structure;
        # and each CSC entry's position in csr.data (its rater's value at that item).
        self.csc_perm = similarity_csc_permutation(matrix)
        self.w_by_item = sp.csr_matrix((matrix.n_items, matrix.n_users), dtype=np.float64)
        self.w_by_item.data, self.w_by_item.indices = base["bm25_by_item"], csc.indices
        self.w_by_item.indptr = csc.indptr
        # Patched by every update: this process's own copies (O(users + items)).
        self.user_sq = np.array(base["user_sq"], dtype=np.float64)
        self.item_sq = np.array(base["item_sq"], dtype=np.float64)
        self.inv_user = _inverse_norms(self.user_sq)
        self.inv_item = _inverse_norms(self.item_sq)
        self.user_ids = np.asarray(matrix.user_ids)
        self.item_ids = np.asarray(matrix.item_ids)
        self._new_users: dict[int, int] = {}
        self._new_items: dict[int, int] = {}
        # Replaced rows: user index -> segment (start, length) of the pool, -1 when the
        # base row stands; ``_replaced`` flags the same users for the kernels.
        self._seg_start = np.full(self.n_users_base, -1, dtype=np.int64)
        self._seg_len = np.zeros(self.n_users_base, dtype=np.int64)
        self._replaced = np.zeros(self.n_users_base, dtype=np.bool_)
        self._pool_items = np.empty(1024, dtype=np.int64)
        self._pool = np.empty((3, 1024))  # scores, weights, residuals
        self._pool_used = 0
        self._pool_live = 0
        # item -> replaced rows rating it now: an update visits only the replaced rows it
        # meets.
        self._raters: dict[int, set[int]] = {}
        # Kept item sums (see above): item index -> (n_items, 5) float64, as _item_sums.
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_bytes = 0
        self._cache_budget = int(item_cache_bytes)
        self._cacheable = counts >= max(int(item_cache_min_raters), 1)
        self._cached = np.zeros(self.n_items_base, dtype=np.bool_)

    @classmethod
    def from_inputs(cls, inputs, **options) -> PatchableModel:
        """From ``build.ModelInputs`` (the raw matrix, its BM25 weights, its baselines)."""
        return cls(inputs.matrix, inputs.ranking, inputs.baselines, inputs.derived, **options)

    @staticmethod
    def derive(inputs) -> None:
        """Make the arrays over all ratings that the model reads (``base_arrays``) through
        ``inputs.derived``, holding none of them: the recompute's prepare step saves them
        beside the snapshot, so no update pays for them."""
        base_arrays(inputs.matrix, inputs.ranking, inputs.baselines, inputs.derived)

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
            self.inv_user = np.append(self.inv_user, 0.0)
            self._seg_start = np.append(self._seg_start, -1)
            self._seg_len = np.append(self._seg_len, 0)
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
                self.inv_item = np.append(self.inv_item, 0.0)
            out[p] = -1 if j is None else j
        return out

    def warm(self) -> None:
        """Run every kernel an update runs once, on the arrays an update passes but with
        nothing to do (or, for the item sums, the least rated item), changing nothing: a
        process's first update then loads no compiled kernel (or, with a cold numba
        cache, compiles none: seconds, which a browser test once saw inside a PUT run
        eagerly)."""
        if not (self.n_users_base and self.n_items_base):
            return
        no_users = np.empty(0, dtype=np.int64)
        sums = np.zeros((self.n_items, 5))
        self.user_neighbours(0, 1)  # _user_dots (row_dots)
        csr, csc = self.base.csr, self.base.csc
        least = int(np.argmin(np.diff(csc.indptr)))
        _item_sums(
            sums, csr.indptr, csr.indices, self.w, self.e, csc.indptr, csc.indices,
            self.csc_perm, self._replaced, least,
        )  # fmt: skip
        pool_w, pool_e = self._pool[1], self._pool[2]
        starts, lens = self._seg_start, self._seg_len
        _overlay_item_sums(sums, self._pool_items, pool_w, pool_e, starts, lens, no_users, 0)
        _overlay_user_dots(self._pool_items, pool_w, starts, lens, no_users, np.zeros(self.n_items))
        # _cache_patch passes a base row (the old one) and a computed one (float64).
        items, _, w, e = self.user_row(0)
        for values in ((w, e), (w.astype(np.float64), e.astype(np.float64))):
            _accumulate_row(
                sums, items, *values, 0, 0, values[0][:1].sum(), values[1][:1].sum(), 1.0
            )

    # -- rows ---------------------------------------------------------------------------
    def user_row(self, u: int) -> tuple[np.ndarray, ...]:
        """(item indices, scores, weights, residuals) of user ``u`` as patched."""
        if u < self.n_users and self._seg_start[u] >= 0:
            a = self._seg_start[u]
            b = a + self._seg_len[u]
            return self._pool_items[a:b], self._pool[0, a:b], self._pool[1, a:b], self._pool[2, a:b]
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
        old_items, _, old_w, old_e = self.user_row(u)
        if self._cache:
            self._cache_patch(old_items, old_w, old_e, -1.0)
            self._cache_patch(items, w, e, 1.0)
        np.subtract.at(self.item_sq, old_items, old_w**2)
        np.add.at(self.item_sq, items, w**2)
        touched = np.union1d(old_items, items)
        self.item_sq[touched] = np.maximum(self.item_sq[touched], 0.0)  # rounding below 0
        self.inv_item[touched] = _inverse_norms(self.item_sq[touched])
        self.user_sq[u] = float(np.sum(w**2))
        self.inv_user[u] = _inverse_norms(self.user_sq[u : u + 1])[0]
        if self._seg_start[u] >= 0:
            for j in old_items.tolist():
                self._raters[j].discard(u)
            self._pool_live -= int(self._seg_len[u])
        for j in items.tolist():
            self._raters.setdefault(j, set()).add(u)
        self._replaced[u] = True
        self._pool_put(u, items, scores, w, e)
        return u

    def _cache_patch(self, items, w, e, sign: float) -> None:
        """Take a row out of (sign -1) or put it into (+1) the kept sums of the items it
        rates."""
        known = items < self.n_items_base
        kept = np.zeros(items.size, dtype=np.bool_)
        kept[known] = self._cached[items[known]]
        for p in np.flatnonzero(kept).tolist():
            sums = self._kept_sums(int(items[p]))
            _accumulate_row(sums, items, w, e, 0, items.size, w[p], e[p], sign)

    def _kept_sums(self, c: int) -> np.ndarray:
        """Item ``c``'s kept sums, grown to the items appended since they were kept."""
        sums = self._cache[c]
        if sums.shape[0] < self.n_items:
            grown = np.zeros((self.n_items, 5))
            grown[: sums.shape[0]] = sums
            self._cache_bytes += grown.nbytes - sums.nbytes
            sums = self._cache[c] = grown
        return sums

    def _cache_put(self, i: int, sums: np.ndarray) -> None:
        self._cache[i] = sums
        self._cached[i] = True
        self._cache_bytes += sums.nbytes
        while self._cache_bytes > self._cache_budget and self._cache:
            old, dropped = self._cache.popitem(last=False)
            self._cached[old] = False
            self._cache_bytes -= dropped.nbytes

    def _pool_put(self, u: int, items, scores, w, e) -> None:
        n = items.size
        if self._pool_used + n > self._pool_items.size:
            if 2 * self._pool_live < self._pool_used:
                self._pool_compact()
            if self._pool_used + n > self._pool_items.size:
                size = max(2 * self._pool_items.size, self._pool_used + n)
                self._pool_items = np.resize(self._pool_items, size)
                grown = np.empty((3, size))
                grown[:, : self._pool_used] = self._pool[:, : self._pool_used]
                self._pool = grown
        a = self._pool_used
        self._pool_items[a : a + n] = items
        self._pool[0, a : a + n], self._pool[1, a : a + n], self._pool[2, a : a + n] = scores, w, e
        self._seg_start[u], self._seg_len[u] = a, n
        self._pool_used += n
        self._pool_live += n

    def _pool_compact(self) -> None:
        """Drop the segments of rows replaced again since: O(the live replaced rows)."""
        users = np.flatnonzero(self._seg_start >= 0)
        starts, lens = self._seg_start[users], self._seg_len[users]
        take = np.concatenate([np.arange(a, a + n) for a, n in zip(starts, lens, strict=True)])
        self._pool_items[: take.size] = self._pool_items[take]
        self._pool[:, : take.size] = self._pool[:, take]
        self._seg_start[users] = np.concatenate([[0], np.cumsum(lens)[:-1]])
        self._pool_used = self._pool_live = int(take.size)

    def user_neighbours(self, u: int, k: int):
        """Top-``k`` users by cosine of BM25 weights with user ``u``: (ids, scores, support),
        as ``compute_neighbours(kind="user", measure="cosine")`` ranks them."""
        items, _, w, _ = self.user_row(u)
        base = items < self.n_items_base
        t = self.w_by_item
        # One pass over the item-major index: every base user whose row still stands.
        cand, dots, support = _user_dots(
            t.indptr, t.indices, t.data, items[base], w[base], self._replaced, u
        )
        others = set().union(*(self._raters.get(j, ()) for j in items.tolist()))
        others.discard(u)
        if others:
            # Replaced rows sharing an item with this user: their current rows count.
            users = np.fromiter(others, dtype=np.int64, count=len(others))
            mine = np.zeros(self.n_items)
            mine[items] = w
            d2, s2 = _overlay_user_dots(
                self._pool_items, self._pool[1], self._seg_start, self._seg_len, users, mine
            )
            cand = np.concatenate([cand, users])
            dots = np.concatenate([dots, d2])
            support = np.concatenate([support, s2])
        norms = self.inv_user[u] * self.inv_user[cand]
        scores = dots * norms
        valid = (support > 0) & (norms > 0)
        return self._top(cand[valid], scores[valid], support[valid], k, self.user_ids)

    def item_rows(self, i: int, *, k_cosine: int, k_pearson: int, shrinkage: float):
        """Item ``i``'s two lists from its raters' rows: (top ``k_cosine`` by cosine of BM25
        weights, top ``k_pearson`` by shrunk pearson_baseline), each (ids, scores, support),
        as ``compute_neighbours(kind="item")`` ranks them."""
        sums = self._item_sums(i)
        cnt = sums[:, 4]
        cand = np.flatnonzero(cnt > 0)
        cand = cand[cand != i]
        sxy_w, sxy, sxx, syy, cnt = (sums[cand, c] for c in range(5))
        with np.errstate(divide="ignore", invalid="ignore"):
            cosine = sxy_w * (self.inv_item[i] * self.inv_item[cand])
            d = sxx * syy
            pearson = np.where(d > 0, sxy / np.sqrt(np.where(d > 0, d, 1.0)), np.nan)
            if shrinkage > 0:
                pearson = pearson * cnt / (cnt + shrinkage)
        by_cos = (self.inv_item[i] * self.inv_item[cand]) > 0
        by_pearson = np.isfinite(pearson)
        return (
            self._top(cand[by_cos], cosine[by_cos], cnt[by_cos], k_cosine, self.item_ids),
            self._top(
                cand[by_pearson], pearson[by_pearson], cnt[by_pearson], k_pearson, self.item_ids
            ),
        )

    def item_sums_costly(self, i: int) -> bool:
        """Whether item ``i``'s rows now take a pass over all its raters' rows: a popular
        item (``item_cache_min_raters``) whose sums are not kept (yet, or any more)."""
        return i < self.n_items_base and self._cacheable[i] and not self._cached[i]

    def _item_sums(self, i: int) -> np.ndarray:
        """Item ``i``'s sums against every item over its raters' current rows, (n_items, 5)
        as the kernel ``_item_sums``: kept ones as they are, else from its column."""
        if i < self.n_items_base and self._cached[i]:
            self._cache.move_to_end(i)
            return self._kept_sums(i)
        sums = np.zeros((self.n_items, 5))
        if i < self.n_items_base:
            # Its base raters (the column), less those whose rows were replaced since.
            csr, csc = self.base.csr, self.base.csc
            _item_sums(
                sums, csr.indptr, csr.indices, self.w, self.e, csc.indptr, csc.indices,
                self.csc_perm, self._replaced, i,
            )  # fmt: skip
        raters = self._raters.get(i)
        if raters:  # replaced rows that rate item i now
            users = np.fromiter(raters, dtype=np.int64, count=len(raters))
            _overlay_item_sums(
                sums, self._pool_items, self._pool[1], self._pool[2],
                self._seg_start, self._seg_len, users, i,
            )  # fmt: skip
        if i < self.n_items_base and self._cacheable[i] and sums.nbytes <= self._cache_budget:
            self._cache_put(i, sums)
        return sums

    @staticmethod
    def _top(cand, scores, support, k, ids):
        """The best ``k`` of the candidates (indices, with their scores and support): score
        descending, then database id (the engine breaks ties by index, which follows id in
        a matrix built from the ids)."""
        if cand.size > k:
            # Only those scoring at least the k-th best can be in (ties kept for the sort).
            kth = np.partition(scores, cand.size - k)[cand.size - k]
            keep = scores >= kth
            cand, scores, support = cand[keep], scores[keep], support[keep]
        order = np.lexsort((ids[cand], -scores))[:k]
        return ids[cand[order]], scores[order], support[order].astype(np.int64)


# Entries per piece when an array over all ratings is derived: bounds the temporaries
# (a few arrays of this many float64 or int64) beside the result, at any size.
_PIECE = 2**22


def base_arrays(matrix, ranking, baselines, derived=None) -> dict[str, np.ndarray]:
    """What the model needs over all ratings besides the snapshot's own arrays, each made
    by ``derived(name, make)`` (``build.ModelInputs.from_snapshot``'s hook: with the
    store's, made once per machine, saved beside the snapshot and mapped; by default made
    here, in memory):

    - "residuals": float64 (nnz,), ``r_ui - b_ui`` aligned with ``matrix.csr.data``;
    - "bm25_by_item": float64 (nnz,), the BM25 weights in CSC order (``ranking``'s data
      through the CSC permutation);
    - "user_sq", "item_sq": float64 (n_users,) and (n_items,), each row's and column's sum
      of squared BM25 weights, added in the order ``np.bincount`` over the CSR adds them
      (a user's items, an item's users, ascending), so they equal that to the bit.

    Each is made in pieces of whole rows, so making one holds the result and a few
    pieces' temporaries, never several arrays over all ratings.
    """
    derived = derived or (lambda name, make: make())
    w = ranking.csr.data
    perm = similarity_csc_permutation(matrix)
    csr_indptr, csc_indptr = matrix.csr.indptr, matrix.csc.indptr
    by_item = derived("bm25_by_item", lambda: _gathered(w, perm))
    return {
        "residuals": derived("residuals", lambda: _residuals(matrix, baselines)),
        "bm25_by_item": by_item,
        "user_sq": derived("user_sq", lambda: _sums_of_squares(csr_indptr, w)),
        "item_sq": derived("item_sq", lambda: _sums_of_squares(csc_indptr, by_item)),
    }


def _pieces(indptr: np.ndarray):
    """(first row, row past the last) of consecutive whole rows of about ``_PIECE``
    entries each (a longer row alone)."""
    n = indptr.size - 1
    lo = 0
    while lo < n:
        hi = int(np.searchsorted(indptr, indptr[lo] + _PIECE, side="right")) - 1
        hi = min(max(hi, lo + 1), n)
        yield lo, hi
        lo = hi


def _gathered(values: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """``values[perm]`` as float64, a piece at a time."""
    out = np.empty(perm.size)
    for a in range(0, perm.size, _PIECE):
        out[a : a + _PIECE] = values[perm[a : a + _PIECE]]
    return out


def _residuals(matrix, baselines) -> np.ndarray:
    """``baselines.residuals(matrix)``, a piece of rows at a time."""
    indptr, out = matrix.csr.indptr, np.empty(matrix.nnz)
    for lo, hi in _pieces(indptr):
        a, b = int(indptr[lo]), int(indptr[hi])
        rows = np.repeat(np.arange(lo, hi), np.diff(indptr[lo : hi + 1]))
        out[a:b] = matrix.csr.data[a:b] - baselines.predict(rows, matrix.csr.indices[a:b])
    return out


def _sums_of_squares(indptr: np.ndarray, values: np.ndarray) -> np.ndarray:
    """float64 (rows,): each row's sum of squared values, its entries added in order."""
    out = np.zeros(indptr.size - 1)
    for lo, hi in _pieces(indptr):
        a, b = int(indptr[lo]), int(indptr[hi])
        rows = np.repeat(np.arange(hi - lo), np.diff(indptr[lo : hi + 1]))
        out[lo:hi] = np.bincount(rows, weights=np.square(values[a:b]), minlength=hi - lo)
    return out


def _inverse_norms(sq: np.ndarray) -> np.ndarray:
    """1/sqrt(sum of squares), 0 where the sum is 0."""
    out = np.zeros(sq.shape)
    np.divide(1.0, np.sqrt(sq), out=out, where=sq > 0)
    return out


# -- kernels: each costs what it reads (the rows or columns named), never O(all ratings) ----
@njit(cache=True, nogil=True)
def _user_dots(t_indptr, t_indices, t_data, features, x, skip, me):
    """One user's dot products with every base user sharing an item, from the item-major
    index (t_*: items x users CSR): (users int64, dots float64, co-rated counts int64),
    leaving out ``me`` and users with ``skip`` set. Costs the total length of the user's
    items' columns, plus one pass over a count array of all base users."""
    n = skip.shape[0]
    dots, counts = _kernels.row_dots(t_indptr, t_indices, t_data, features, x, n)
    m = 0
    for r in range(n):
        if counts[r] > 0 and not skip[r] and r != me:
            m += 1
    users = np.empty(m, dtype=np.int64)
    out_dots = np.empty(m)
    out_counts = np.empty(m, dtype=np.int64)
    m = 0
    for r in range(n):
        if counts[r] > 0 and not skip[r] and r != me:
            users[m] = r
            out_dots[m] = dots[r]
            out_counts[m] = np.int64(counts[r])
            m += 1
    return users, out_dots, out_counts


@njit(cache=True, nogil=True)
def _overlay_user_dots(p_items, p_w, starts, lens, users, mine):
    """Dot products and co-rated counts of replaced rows (pool segments) with a dense row
    ``mine`` (0 where not rated; weights are positive)."""
    dots = np.zeros(users.shape[0])
    counts = np.zeros(users.shape[0], dtype=np.int64)
    for t in range(users.shape[0]):
        a = starts[users[t]]
        for p in range(a, a + lens[users[t]]):
            y = mine[p_items[p]]
            if y != 0.0:
                dots[t] += p_w[p] * y
                counts[t] += 1
    return dots, counts


@njit(cache=True, nogil=True)
def _accumulate_row(out, indices, w, e, lo, hi, xw, xe, sign):
    """Add (sign 1) or take out (sign -1) one row's terms of the item sums (see
    ``_item_sums``): entries ``lo..hi-1`` of (indices, w, e), the row's own values at the
    item being ``xw``, ``xe``."""
    xw = sign * xw
    xe2 = sign * xe * xe
    xe = sign * xe
    for p in range(lo, hi):
        j = indices[p]
        ep = e[p]
        out[j, 0] += xw * w[p]
        out[j, 1] += xe * ep
        out[j, 2] += xe2
        out[j, 3] += sign * ep * ep
        out[j, 4] += sign


@njit(cache=True, nogil=True)
def _item_sums(out, indptr, indices, w, e, c_indptr, c_indices, perm, skip, i):
    """Add item ``i``'s sums against every item over its base raters whose rows stand
    (users x items CSR with two value arrays ``w`` and ``e``; its column from the CSC
    structure, ``perm`` the CSR position of each CSC entry): out[j] += (sum x_w w_j,
    sum x_e e_j, sum x_e^2, sum e_j^2, count), x being each row's own value at ``i``.
    Costs the total length of those rows."""
    for p in range(c_indptr[i], c_indptr[i + 1]):
        u = c_indices[p]
        if skip[u]:
            continue
        a = perm[p]
        _accumulate_row(out, indices, w, e, indptr[u], indptr[u + 1], w[a], e[a], 1.0)


@njit(cache=True, nogil=True)
def _overlay_item_sums(out, p_items, p_w, p_e, starts, lens, users, i):
    """``_item_sums`` over replaced rows (pool segments, item indices sorted) rating ``i``."""
    for t in range(users.shape[0]):
        lo = starts[users[t]]
        hi = lo + lens[users[t]]
        a = lo + np.searchsorted(p_items[lo:hi], i)
        if a < hi and p_items[a] == i:
            _accumulate_row(out, p_items, p_w, p_e, lo, hi, p_w[a], p_e[a], 1.0)
