"""A Bayesian factorization machine with side features, fitted by Gibbs sampling.

Prediction for one rating with feature vector ``x`` (Rendle 2010):

    y(x) = w0 + sum_j w_j x_j + sum_{j<l} <v_j, v_l> x_j x_l

The features of a rating (user u, item i) are two blocks, one per side (Rendle 2013,
"Scaling factorization machines to relational data"; the layout myFM calls relations):

* user block ``B_U[u]``: the user's id (1), their demographics (one-hot, when given) and
  their rated-item set, each rated item ``1 / sqrt(n_u)`` (SVD++'s implicit feedback);
* item block ``B_I[i]``: the item's id (1), its genres (1 each), its 5-year release bin
  (1), and optionally the set of its raters (``1 / sqrt(n_i)``).

Every parameter has a Normal prior whose mean and precision are per (feature group,
dimension) with Normal-Gamma hyper-priors, and the noise precision a Gamma prior, as in
libFM's MCMC. A sweep draws each parameter from its conditional in turn; the prediction is
the mean over the kept sweeps, which is what keeps this from over-fitting small data.

The block structure is what makes it cheap: a rating's prediction splits into a user part,
an item part and ``<q_U(u), q_I(i)>`` with ``q_U = B_U V_U`` (k-vectors per user), so the
sums a parameter's conditional needs over all the ratings it touches are formed per user
(or per item) from a handful of aggregates. A sweep costs O(k (nnz(B_U) + nnz(B_I) +
n_ratings)) instead of O(k sum_u n_u^2) with the rated-item set expanded into every row.
(Written here rather than taken from the ``myfm`` library: myfm 0.4.0 needs pandas, which
the product does not otherwise install, and a user's new rating must be folded in
without a refit: :meth:`BayesianFM.fold_in`. Measured against it in bench/README.md.)

Fold-in: a user's id parameters ``(w_u, v_u)`` enter every one of their ratings linearly,
so given one posterior sample of everything else their conditional is a (k+1)-sized
Gaussian. :meth:`BayesianFM.fold_in` solves its mean per kept sample from the user's live
ratings, which is the incremental update after a rating (and works for a user unseen in
training, from their demographics and rated items alone).
"""

from __future__ import annotations

import math
import zlib

import numba
import numpy as np
import scipy.sparse as sp

from .blend import users_features
from .data import ItemInfo, UserInfo
from .matrix import RatingMatrix, _index_of

__all__ = ["BayesianFM"]


class _Block:
    """One side's features: CSR (n_entities, n_cols), its CSC, group id per column, and
    per group a name and per column a key that names the column across fits (an id, a
    genre's crc32, a year bin): what a warm start matches columns by."""

    def __init__(self, parts):
        """``parts``: [(name, matrix, keys)] per group; the list is emptied once its
        matrices are stacked, so they are freed before the CSC is built (memory)."""
        mats, groups, keys = [], [], []
        for g, (_, m, k) in enumerate(parts):
            mats.append(sp.csr_matrix(m, dtype=np.float64))
            groups.append(np.full(m.shape[1], g, dtype=np.int64))
            keys.append(np.asarray(k, dtype=np.int64))
        self.names = [name for name, _, _ in parts]
        self.n_groups = len(parts)
        self.sizes = [m.shape[1] for m in mats]
        self.csr = sp.hstack(mats, format="csr")
        del mats
        parts.clear()
        self.csr.sort_indices()
        self.csc = self.csr.tocsc()
        self.csc.sort_indices()
        self.groups = np.concatenate(groups)
        self.keys = np.concatenate(keys)


def _implicit(csr) -> sp.csr_matrix:
    """Each stored entry set to 1/sqrt(row count): the normalised rated set per row.
    (Shares ``csr``'s index arrays: the blocks stack it into a new matrix at once.)"""
    csr = sp.csr_matrix(csr)
    n = np.diff(csr.indptr)
    val = np.repeat(1.0 / np.sqrt(np.maximum(n, 1)), n)
    return sp.csr_matrix((val, csr.indices, csr.indptr), shape=csr.shape, copy=False)


def _raters(csr) -> sp.csr_matrix:
    """The rater set per column of ``csr``, as :func:`_implicit` rows (items x users),
    from a transposition of the structure alone: no float copy of the ratings, and no
    CSC cached on the matrix for the rest of the fit."""
    pattern = sp.csr_matrix(
        (np.ones(csr.nnz, dtype=np.int8), csr.indices, csr.indptr), shape=csr.shape
    )
    t = pattern.tocsc()
    t.sort_indices()
    return _implicit(sp.csr_matrix((t.data, t.indices, t.indptr), shape=csr.shape[::-1]))


def side_vocab(info: ItemInfo, item_ids, *, genres=True, years=True) -> tuple[list, list]:
    """(sorted genre names, sorted 5-year bin labels) of ``item_ids``: the side columns."""
    info = info.subset(item_ids)
    names = sorted({g for gs in info.genres for g in gs}) if genres else []
    known = info.years[~np.isnan(info.years)]
    labels = np.unique(known // 5).astype(np.int64).tolist() if years else []
    return names, labels


def side_rows(genre_lists, years, names, labels) -> list:
    """[genre one-hot (n, len(names))], [5-year bin one-hot (n, len(labels))] of items
    given by their genre lists and years (NaN: unknown); names or bins outside the
    vocabulary get no column. Empty vocabularies give no block."""
    n = len(genre_lists)
    out = []
    if names:
        col = {g: k for k, g in enumerate(names)}
        pairs = [(r, col[g]) for r, gs in enumerate(genre_lists) for g in gs if g in col]
        r = [a for a, _ in pairs]
        c = [b for _, b in pairs]
        out.append(sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, len(names))))
    if labels:
        years = np.asarray(years, dtype=np.float64)
        bins = np.where(np.isnan(years), np.nan, years // 5)
        pos = {int(b): k for k, b in enumerate(labels)}
        hits = [(r, pos[int(b)]) for r, b in enumerate(bins) if b == b and int(b) in pos]
        r = [a for a, _ in hits]
        c = [b for _, b in hits]
        out.append(sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, len(labels))))
    return out


def item_side_features(info: ItemInfo, item_ids, *, genres=True, years=True) -> list:
    """[genre one-hot (n_items, n_genres)], [5-year bin one-hot] for ``item_ids``."""
    names, labels = side_vocab(info, item_ids, genres=genres, years=years)
    sub = info.subset(item_ids)
    return side_rows(sub.genres, sub.years, names, labels)


class BayesianFM:
    """Factorization machine over user and item feature blocks, posterior mean by Gibbs.

    Hyper-parameters (keyword-only): ``factors`` k; ``n_iter`` sweeps, the first
    ``burn_in`` discarded, then every ``keep_every``-th kept; ``implicit`` adds the user's
    rated-item set, ``item_raters`` the item's rater set; ``genres`` / ``years`` /
    ``demographics`` use the side information passed to :meth:`fit` when there is some.

    Learned state: ``user_samples_`` float32 (n_kept, n_users, k+1) and ``item_samples_``
    float32 (n_kept, n_items, k+1): per kept sample, column 0 the side's additive part
    (linear terms and within-block interactions; the item side also holds w0), columns 1..
    ``q = B V``; a rating's prediction in one sample is ``u[0] + i[0] + u[1:] . i[1:]``.
    ``w0_samples_`` (n_kept,); ``fold_*_``, ``item_mu_``, ``side_*_`` what :meth:`fold_in`
    and :meth:`cold_item_parts` need per sample (see :meth:`parts`); ``w0_``,
    ``w_`` (p,), ``v_`` (p, k) the chain's final state over the columns of
    :meth:`design` (user block, then item block).
    """

    def __init__(
        self,
        *,
        factors: int = 10,
        n_iter: int = 200,
        burn_in: int = 50,
        keep_every: int = 1,
        init_std: float = 0.1,
        implicit: bool = True,
        item_raters: bool = False,
        genres: bool = True,
        years: bool = True,
        demographics: bool = True,
        clip: tuple = (1.0, 5.0),
        seed: int = 0,
    ):
        self.factors = factors
        self.n_iter = n_iter
        self.burn_in = burn_in
        self.keep_every = keep_every
        self.init_std = init_std
        self.implicit = implicit
        self.item_raters = item_raters
        self.genres = genres
        self.years = years
        self.demographics = demographics
        self.clip = clip
        self.seed = seed

    # -- features ---------------------------------------------------------------------------
    def _blocks(self, matrix, items, users):
        nu, ni = matrix.shape
        uparts = [("user", sp.identity(nu, format="csr"), matrix.user_ids)]
        self.demo_cols_ = 0
        if users is not None and self.demographics:
            demo = users_features(users, matrix.user_ids)
            uparts.append(("demographics", sp.csr_matrix(demo), np.arange(demo.shape[1])))
            self.demo_cols_ = demo.shape[1]
        if self.implicit:
            uparts.append(("rated", _implicit(matrix.csr), matrix.item_ids))
        # (memory: each side's parts are stacked and freed before the other's are made)
        user_block = _Block(uparts)
        iparts = [("item", sp.identity(ni, format="csr"), matrix.item_ids)]
        self.genre_names_, self.year_bins_ = [], []
        if items is not None:
            self.genre_names_, self.year_bins_ = side_vocab(
                items, matrix.item_ids, genres=self.genres, years=self.years
            )
            sub = items.subset(matrix.item_ids)
            side = side_rows(sub.genres, sub.years, self.genre_names_, self.year_bins_)
            keys = []
            if self.genre_names_:
                keys.append(("genres", [zlib.crc32(g.encode()) for g in self.genre_names_]))
            if self.year_bins_:
                keys.append(("years", self.year_bins_))
            iparts += [(name, m, k) for (name, k), m in zip(keys, side, strict=True)]
        if self.item_raters:
            iparts.append(("raters", _raters(matrix.csr), matrix.user_ids))
        return user_block, _Block(iparts)

    def design(self, users, items) -> np.ndarray:
        """float64 (n, p) dense feature rows of (user index, item index) pairs of the
        training matrix: the user block's columns, then the item block's."""
        u = self.user_block_.csr[np.asarray(users)].toarray()
        i = self.item_block_.csr[np.asarray(items)].toarray()
        return np.hstack([u, i])

    # -- fitting ------------------------------------------------------------------------------
    def fit(
        self,
        matrix: RatingMatrix,
        *,
        items: ItemInfo | None = None,
        users: UserInfo | None = None,
        warm: tuple[dict, dict] | None = None,
    ) -> BayesianFM:
        """Run the chain on ``matrix`` (and the side information given).

        ``warm``: a previous fit's :meth:`chain_state` to start from instead of the prior:
        every column whose group and key (user or item id, genre, year bin) it has starts
        at its value there, every other column (a new user or item) at its group's mean
        there; the hyper-parameters, noise precision and w0 continue. Where ratings
        changed little since, the chain needs few burn-in sweeps (bench/README). Ignored
        when its factors differ."""
        rng = np.random.default_rng(self.seed)
        k = self.factors
        bu, bi = self._blocks(matrix, items, users)
        self.user_block_, self.item_block_ = bu, bi
        # (memory: the ratings in CSR order, the columns the CSR's own int32 indices, no
        # COO or int64 copies: at 25M each rating-sized int64 array is 200 MB)
        csr = matrix.csr
        nu, ni = matrix.shape
        cnt_u = np.diff(csr.indptr).astype(np.float64)
        ur = np.repeat(np.arange(nu, dtype=np.int32), np.diff(csr.indptr))
        ir = np.asarray(csr.indices, dtype=np.int32)
        y = np.asarray(csr.data, dtype=np.float64)
        n = y.size
        cnt_i = np.bincount(ir, minlength=ni).astype(np.float64)
        sides = [
            _Side(bu, ur, cnt_u, rng, k, self.init_std),
            _Side(bi, ir, cnt_i, rng, k, self.init_std),
        ]
        w0 = float(y.mean()) if n else 0.0
        alpha = 1.0
        if warm is not None and int(warm[1]["factors"]) == k:
            arrays, meta = warm
            for s, tag in zip(sides, "ui", strict=True):
                s.start_from(arrays, meta["names"][tag], tag, rng, self.init_std)
            w0, alpha = float(meta["w0"]), float(meta["alpha"])
        e = np.empty(n)
        _residuals(y, w0, sides, ur, ir, e)
        kept_u, kept_i, kept_w0, kept_fold = [], [], [], []
        n_side = len(self.genre_names_) + len(self.year_bins_)
        for it in range(self.n_iter):
            alpha = rng.gamma(0.5 * (1.0 + n), 1.0 / (0.5 * (1.0 + e @ e)))
            for s in sides:
                s.sample_hyper(rng)
            prec = alpha * n + 1.0
            new = (alpha * (e.sum() + w0 * n)) / prec + rng.standard_normal() / math.sqrt(prec)
            e -= new - w0
            w0 = new
            for s in sides:
                _sub_gathered(e, s.sample_linear(e, alpha, rng), s.rows)
            # Each draw needs per-entity sums over the residuals, which the previous draw
            # moved: one pass over the ratings does both (_sync_aggregates), and the last
            # draw's pass is skipped as the residuals are recomputed right after.
            su = sides[0]
            stats = _aggregates(su.rows, sides[1].rows, e, np.ascontiguousarray(sides[1].q[:, 0]),
                                su.counts.size)  # fmt: skip
            for f in range(k):
                for a, s in enumerate(sides):
                    other = sides[1 - a]
                    dq, dc = s.sample_factor(f, stats, alpha, rng)
                    nf = f + a  # the next draw: the item side's f, then the user side's f+1
                    if nf < k:
                        stats = _sync_aggregates(
                            s.rows, other.rows, e, dq, dc,
                            np.ascontiguousarray(other.q[:, f]),
                            np.ascontiguousarray(s.q[:, nf]), other.counts.size,
                        )  # fmt: skip
            # float drift from millions of incremental updates: recompute exactly
            _residuals(y, w0, sides, ur, ir, e)
            if it >= self.burn_in and (it - self.burn_in) % self.keep_every == 0:
                su, si = sides
                kept_w0.append(w0)
                kept_u.append(np.column_stack([su.additive(), su.q]).astype(np.float32))
                kept_i.append(np.column_stack([w0 + si.additive(), si.q]).astype(np.float32))
                side = slice(ni, ni + n_side)  # the item block's genre and year columns
                kept_fold.append(
                    (
                        alpha,
                        np.r_[su.mu_w[0], su.mu_v[0]],
                        np.r_[su.lam_w[0], su.lam_v[0]],
                        su.w[nu:].copy(),
                        su.v[nu:].copy(),
                        np.r_[si.mu_w[0], si.mu_v[0]],
                        si.w[side].copy(),
                        si.v[side].copy(),
                    )
                )
        if not kept_u:
            raise ValueError("n_iter must exceed burn_in: no sample kept")
        self.w0_samples_ = np.asarray(kept_w0)
        self.user_samples_ = np.stack(kept_u)
        self.item_samples_ = np.stack(kept_i)
        # what fold_in and cold items need, per kept sample: the noise precision, the
        # user id group's prior (mean, precision), the weights of the user block's other
        # columns (rated-item set, after any demographics), the item id group's prior mean
        # and the item block's genre and year weights
        fields = list(zip(*kept_fold, strict=True))
        self.fold_alpha_ = np.asarray(fields[0], dtype=np.float64)
        self.fold_mu_, self.fold_lam_ = np.stack(fields[1]), np.stack(fields[2])
        self.fold_w_ = np.stack(fields[3]).astype(np.float32)
        self.fold_v_ = np.stack(fields[4]).astype(np.float32)
        self.item_mu_ = np.stack(fields[5])
        self.side_w_ = np.stack(fields[6]).astype(np.float32)
        self.side_v_ = np.stack(fields[7]).astype(np.float32)
        su, si = sides
        self.w0_ = w0
        self.chain_ = self._chain(sides, w0, alpha)
        self.w_ = np.concatenate([su.w, si.w])
        self.v_ = np.vstack([su.v, si.v])
        self.n_users_, self.n_items_ = nu, ni
        return self

    def chain_state(self) -> tuple[dict[str, np.ndarray], dict]:
        """(arrays, meta): the chain's final state for a later fit's ``warm`` start: per
        side ("u", "i") each column's key, group, w and v (float32), each group's prior
        mean and precision (w first, then v); meta the group names, factors, w0, alpha.
        (n_cols (k + 3) numbers per side: far smaller than the kept samples.)"""
        return self.chain_

    def _chain(self, sides, w0, alpha):
        arrays, names = {}, {}
        for s, tag in zip(sides, "ui", strict=True):
            arrays[f"chain_{tag}_keys"] = s.b.keys
            arrays[f"chain_{tag}_groups"] = s.b.groups
            arrays[f"chain_{tag}_w"] = s.w.astype(np.float32)
            arrays[f"chain_{tag}_v"] = s.v.astype(np.float32)
            arrays[f"chain_{tag}_mu"] = np.column_stack([s.mu_w, s.mu_v])
            arrays[f"chain_{tag}_lam"] = np.column_stack([s.lam_w, s.lam_v])
            names[tag] = list(s.b.names)
        meta = {"factors": self.factors, "names": names, "w0": w0, "alpha": float(alpha)}
        return arrays, meta

    # -- prediction ---------------------------------------------------------------------------
    def predict(self, users, items) -> np.ndarray:
        """float64 posterior-mean ratings for (user index, item index) pairs, clipped.

        Index -1 (unknown) contributes nothing from that side: an unknown user gets the
        item's part alone, an unknown item the user's part and w0."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = np.zeros(users.shape)
        ku, ki = users >= 0, items >= 0
        for s in range(self.user_samples_.shape[0]):
            pu = np.where(ku[:, None], self.user_samples_[s][np.maximum(users, 0)], 0.0)
            qi = np.where(ki[:, None], self.item_samples_[s][np.maximum(items, 0)], 0.0)
            qi[~ki, 0] = self.w0_samples_[s]
            out += pu[:, 0] + qi[:, 0] + np.einsum("ij,ij->i", pu[:, 1:], qi[:, 1:])
        return np.clip(out / self.user_samples_.shape[0], *self.clip)

    def fold_in(self, items, ratings, *, features=None) -> np.ndarray:
        """float64 (n_kept, k+1) one user's part per sample from their live ratings.

        Args:
            items: int item indices the user rated; ratings: their scores.
            features: float (n_demographics,) the user's demographics, if the model has any.
        Per sample: the user's rated-item set and demographics give the fixed part of the
        user block; the id parameters ``(w_u, v_u)`` are the mean of their Gaussian
        conditional given everything else of that sample. Pass the result to
        :meth:`predict_folded`. Cost: O(n_kept (len(items) k^2 + k^3)).
        """
        items = np.asarray(items, dtype=np.int64)
        y = np.asarray(ratings, dtype=np.float64)
        k = self.factors
        # the fixed (non-id) part of the user's block row
        cols, vals = [], []
        if self.demo_cols_:
            f = np.zeros(self.demo_cols_) if features is None else np.asarray(features, float)
            nz = np.flatnonzero(f)
            cols.append(nz)
            vals.append(f[nz])
        if self.implicit and items.size:
            cols.append(self.demo_cols_ + items)
            vals.append(np.full(items.size, 1.0 / math.sqrt(items.size)))
        cols = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        vals = np.concatenate(vals) if vals else np.zeros(0)
        n_kept = self.fold_alpha_.size
        wr = self.fold_w_[:, cols].astype(np.float64)  # (n_kept, m)
        vr = self.fold_v_[:, cols].astype(np.float64)  # (n_kept, m, k)
        # (batched matmul rather than einsum: einsum's loops took most of a request)
        q_rest = vals @ vr  # (n_kept, k)
        add_rest = wr @ vals + 0.5 * ((q_rest**2).sum(axis=1) - ((vals**2) @ (vr**2)).sum(axis=1))
        it = self.item_samples_[:, items].astype(np.float64)  # (n_kept, n, k+1)
        # rating r = add_rest + it0 + q_rest . qi + [w_u + v_u . (q_rest + qi)]
        z = np.concatenate([np.ones((n_kept, items.size, 1)), q_rest[:, None] + it[:, :, 1:]], 2)
        t = y - add_rest[:, None] - it[:, :, 0] - (it[:, :, 1:] @ q_rest[:, :, None])[:, :, 0]
        alpha = self.fold_alpha_[:, None, None]
        lam = self.fold_lam_
        zt = z.transpose(0, 2, 1)
        a = alpha * (zt @ z) + lam[:, :, None] * np.eye(k + 1)
        rhs = self.fold_alpha_[:, None] * (zt @ t[:, :, None])[:, :, 0] + lam * self.fold_mu_
        theta = np.linalg.solve(a, rhs[:, :, None])[:, :, 0]
        out = np.empty((n_kept, k + 1))
        out[:, 0] = add_rest + theta[:, 0] + (theta[:, 1:] * q_rest).sum(axis=1)
        out[:, 1:] = q_rest + theta[:, 1:]
        return out

    def predict_folded(self, state, items, *, item_parts=None) -> np.ndarray:
        """float64 (len(items),) clipped predictions for a folded-in user (``fold_in``).

        ``item_parts``: float (n_kept, len(items), k+1) the items' parts instead of the
        stored ones (items outside the training columns: :meth:`cold_item_parts`)."""
        if item_parts is None:
            item_parts = self.item_samples_[:, np.asarray(items, dtype=np.int64)]
        it = np.asarray(item_parts, dtype=np.float64)  # (n_kept, n, k+1)
        est = state[:, None, 0] + it[:, :, 0] + np.einsum("sk,snk->sn", state[:, 1:], it[:, :, 1:])
        return np.clip(est.mean(axis=0), *self.clip)

    def cold_item_parts(self, genre_lists, years) -> np.ndarray:
        """float64 (n_kept, n, k+1) item parts of items the fit never saw, per sample: w0,
        their genre and year-bin weights, and the item id group's prior mean in place of
        their own id parameters (what the model knows of an item with no ratings).

        Args:
            genre_lists: n lists of genre names; years: float (n,) release years (NaN:
            unknown). Names and bins the fit did not see contribute nothing.
        """
        blocks = side_rows(genre_lists, years, self.genre_names_, self.year_bins_)
        n = len(genre_lists)
        x = sp.hstack(blocks, format="csr") if blocks else sp.csr_matrix((n, 0))
        xs = x.toarray()  # (n, n_side): a handful of items
        w, v = self.side_w_.astype(np.float64), self.side_v_.astype(np.float64)
        mu = self.item_mu_  # (n_kept, k+1): the id feature at its prior mean, x = 1
        q = np.einsum("nm,smk->snk", xs, v) + mu[:, None, 1:]
        own = np.einsum("nm,smk->snk", xs**2, v**2).sum(axis=2) + (mu[:, None, 1:] ** 2).sum(2)
        add = xs @ w.T + mu[:, 0] + 0.5 * ((q**2).sum(axis=2).T - own.T)  # (n, n_kept)
        out = np.empty((self.fold_alpha_.size, n, self.factors + 1))
        out[:, :, 0] = (add + self.w0_samples_).T
        out[:, :, 1:] = q
        return out

    def item_links(self, items, item_parts) -> np.ndarray:
        """float64 (len(items),) for a user's rated ``items`` (indices), the posterior mean
        of each one's interaction with one target item: ``x_j <v_j, q_i>``, the term the
        target's prediction gets from the pair (rated item j in the user's rated-item set,
        the target's item block). What "because you rated X" can truthfully name.

        ``item_parts``: float (n_kept, k+1) the target's parts."""
        items = np.asarray(items, dtype=np.int64)
        if not (self.implicit and items.size):
            return np.zeros(items.size)
        vr = self.fold_v_[:, self.demo_cols_ + items].astype(np.float64)  # (s, n, k)
        q_i = np.asarray(item_parts, dtype=np.float64)[:, 1:]
        return np.einsum("snk,sk->n", vr, q_i) / (math.sqrt(items.size) * q_i.shape[0])

    # -- the stored form (the product's rating model) ---------------------------------------
    _PARTS = (
        "w0_samples_", "item_samples_", "fold_alpha_", "fold_mu_", "fold_lam_", "fold_w_",
        "fold_v_", "item_mu_", "side_w_", "side_v_",
    )  # fmt: skip

    def parts(self) -> tuple[dict[str, np.ndarray], dict]:
        """(arrays, config): what :meth:`fold_in`, :meth:`predict_folded`,
        :meth:`cold_item_parts` and :meth:`item_links` need, as plain arrays and a JSON-able
        dict. (n_kept (n_items (2k + 2) + ...) float32: the per-user samples are left out:
        a served user is always folded in from their live ratings.)"""
        arrays = {name.rstrip("_"): getattr(self, name) for name in self._PARTS}
        config = {
            "params": {
                name: getattr(self, name)
                for name in (
                    "factors",
                    "n_iter",
                    "burn_in",
                    "keep_every",
                    "init_std",
                    "implicit",
                    "item_raters",
                    "genres",
                    "years",
                    "demographics",
                    "seed",
                )
            },  # fmt: skip
            "clip": list(self.clip),
            "demo_cols": int(self.demo_cols_),
            "genre_names": list(self.genre_names_),
            "year_bins": [int(b) for b in self.year_bins_],
        }
        return arrays, config

    @classmethod
    def from_parts(cls, arrays, config) -> BayesianFM:
        """An estimator that folds in, predicts and explains from :meth:`parts`' output
        (arrays may be read-only memory maps; :meth:`fit`'s other state is absent)."""
        fm = cls(**config["params"], clip=tuple(config["clip"]))
        for name in cls._PARTS:
            setattr(fm, name, arrays[name.rstrip("_")])
        fm.demo_cols_ = config["demo_cols"]
        fm.genre_names_ = config["genre_names"]
        fm.year_bins_ = config["year_bins"]
        return fm


class _Side:
    """Parameters and sampling of one block (user or item side)."""

    def __init__(self, block: _Block, rows, counts, rng, k, init_std):
        self.b = block
        self.rows = rows
        self.counts = counts
        p = block.csr.shape[1]
        self.w = np.zeros(p)
        self.v = rng.normal(0.0, init_std, (p, k))
        g = block.n_groups
        self.mu_w, self.lam_w = np.zeros(g), np.ones(g)
        self.mu_v, self.lam_v = np.zeros((g, k)), np.ones((g, k))
        self.lin = block.csr @ self.w
        self.q, self.c = np.empty((self.counts.size, k)), np.empty((self.counts.size, k))
        for f in range(k):  # c: the within-block interactions
            self.q[:, f], self.c[:, f] = _q_c(
                block.csr.indptr, block.csr.indices, block.csr.data, self.v[:, f].copy()
            )

    def start_from(self, arrays, names, tag, rng, init_std):
        """Start at a previous chain's state (:meth:`BayesianFM.chain_state`, this side
        ``tag``; its group ``names``): a group both have continues its prior, a column
        with the same key its w and v; a new column starts at its group's prior mean
        (v plus ``init_std`` noise, as a cold start's); groups only this fit has keep
        the cold start's."""
        b = self.b
        old_keys, old_groups = arrays[f"chain_{tag}_keys"], arrays[f"chain_{tag}_groups"]
        old_w, old_v = arrays[f"chain_{tag}_w"], arrays[f"chain_{tag}_v"]
        mu, lam = arrays[f"chain_{tag}_mu"], arrays[f"chain_{tag}_lam"]
        for g, name in enumerate(b.names):
            if name not in names:
                continue
            og = names.index(name)
            self.mu_w[g], self.mu_v[g] = mu[og, 0], mu[og, 1:]
            self.lam_w[g], self.lam_v[g] = lam[og, 0], lam[og, 1:]
            cols = np.flatnonzero(b.groups == g)
            old_cols = np.flatnonzero(old_groups == og)
            order = np.argsort(old_keys[old_cols], kind="stable")
            at = _index_of(old_keys[old_cols][order], b.keys[cols])
            hit = at >= 0
            src = old_cols[order][at[hit]]
            self.w[cols] = self.mu_w[g]
            self.v[cols] = self.mu_v[g] + rng.normal(0.0, init_std, (cols.size, self.v.shape[1]))
            self.w[cols[hit]] = old_w[src]
            self.v[cols[hit]] = old_v[src]
        self.lin = b.csr @ self.w
        for f in range(self.v.shape[1]):
            self.q[:, f], self.c[:, f] = _q_c(b.csr.indptr, b.csr.indices, b.csr.data,
                                              self.v[:, f].copy())  # fmt: skip

    def additive(self):
        return self.lin + self.c.sum(axis=1)

    def sample_hyper(self, rng):
        """Normal-Gamma per (group, dimension) as libFM: mu0 = 0, gamma0 = 1, a0 = b0 = 1."""
        for g in range(self.b.n_groups):
            sel = self.b.groups == g
            par = np.column_stack([self.w[sel], self.v[sel]])  # (m, k+1)
            mu = np.r_[self.mu_w[g], self.mu_v[g]]
            m = par.shape[0]
            ss = ((par - mu) ** 2).sum(axis=0) + mu**2
            lam = rng.gamma(0.5 * (m + 2.0), 1.0 / (0.5 * (1.0 + ss)))
            mu = rng.normal(par.sum(axis=0) / (m + 1.0), 1.0 / np.sqrt((m + 1.0) * lam))
            self.lam_w[g], self.lam_v[g] = lam[0], lam[1:]
            self.mu_w[g], self.mu_v[g] = mu[0], mu[1:]

    def sample_linear(self, e, alpha, rng):
        """Draw every linear weight of the block; returns the change of ``lin`` per entity."""
        b = self.b
        agg = _entity_sums(self.rows, e, self.counts.size)
        old = self.lin.copy()
        _linear_block(
            b.csc.indptr, b.csc.indices, b.csc.data, self.w, b.groups, self.mu_w, self.lam_w,
            alpha, self.counts, agg, rng.standard_normal(self.w.size),
        )  # fmt: skip
        self.lin = b.csr @ self.w
        return self.lin - old

    def sample_factor(self, f, stats, alpha, rng):
        """Draw column f of every factor; returns (change of q[:, f], change of c[:, f]).

        ``stats``: float64 (n_entities, 6) from :func:`_aggregates` or
        :func:`_sync_aggregates` for this side and f, its columns 0 and 1 (q, n) unset."""
        b = self.b
        stats[:, 0] = self.q[:, f]
        stats[:, 1] = self.counts
        col = np.ascontiguousarray(self.v[:, f])
        old_q, old_c = self.q[:, f].copy(), self.c[:, f].copy()
        _factor_block(
            b.csc.indptr, b.csc.indices, b.csc.data, col, b.groups,
            np.ascontiguousarray(self.mu_v[:, f]), np.ascontiguousarray(self.lam_v[:, f]),
            alpha, stats, rng.standard_normal(col.size),
        )  # fmt: skip
        self.v[:, f] = col
        # exact, not the kernel's running sums
        self.q[:, f], self.c[:, f] = _q_c(b.csr.indptr, b.csr.indices, b.csr.data, col)
        return self.q[:, f] - old_q, self.c[:, f] - old_c


# Per-entity state of a factor draw, one row per entity so that the kernels' random
# accesses touch one cache line instead of six (at 10M ratings the user side's arrays no
# longer fit the cache): q, n, E (sum e), S1 (sum q_o), S2 (sum q_o^2), F (sum q_o e).
_Q, _N, _E, _S1, _S2, _F = range(6)


def _aggregates(ent, oth, e, q_other, n_ent):
    """float64 (n_ent, 6): per entity sum e, sum q_o, sum q_o^2, sum q_o e over its
    ratings in columns _E.._F (_Q and _N left zero): :func:`_sync_aggregates` with
    nothing moved."""
    none = np.zeros(int(oth.max()) + 1 if oth.size else 0)
    return _sync_aggregates(oth, ent, e, none, none, np.zeros(n_ent), q_other, n_ent)


@numba.njit(cache=True)
def _sync_aggregates(moved, nxt, e, dq, dc, q_sync, q_agg, n_next):  # pragma: no cover
    """One pass over the ratings: the residuals after the ``moved`` side's factor moved
    (prediction += dq q_sync + dc, ``q_sync`` the other side's column, by ``nxt`` entity),
    and :func:`_aggregates` of the ``nxt`` side for its next draw, whose other side's
    column is ``q_agg`` (by ``moved`` entity)."""
    st = np.zeros((n_next, 6))
    for r in range(moved.size):
        m = moved[r]
        u = nxt[r]
        e[r] -= dq[m] * q_sync[u] + dc[m]
        qo = q_agg[m]
        st[u, _E] += e[r]
        st[u, _S1] += qo
        st[u, _S2] += qo * qo
        st[u, _F] += qo * e[r]
    return st


@numba.njit(cache=True)
def _q_c(indptr, indices, data, col):  # pragma: no cover - numba
    """(B col, 0.5 ((B col)^2 - B^2 col^2)) per row of a block B (CSR): one factor's q and
    within-block interactions in one pass (two scipy products made two)."""
    n = indptr.size - 1
    q, c = np.empty(n), np.empty(n)
    for u in range(n):
        s = 0.0
        s2 = 0.0
        for p in range(indptr[u], indptr[u + 1]):
            x = data[p]
            vj = col[indices[p]]
            s += x * vj
            s2 += (x * x) * (vj * vj)
        q[u] = s
        c[u] = 0.5 * (s * s - s2)
    return q, c


def _residuals(y, w0, sides, ur, ir, out):
    """``out[:] = y - w0 - prediction`` per rating (``ur``, ``ir`` its user and item),
    the prediction ``add_u[u] + add_i[i] + q_u[u] . q_i[i]`` from the sides' parts, in
    place: no rating-sized temporaries."""
    su, si = sides
    _residuals_into(y, w0, ur, ir, su.additive(), si.additive(), su.q, si.q, out)


# (one thread: in a worker beside another worker on the same cores, numba's threads only
# contend with it; the pass is a few percent of a sweep)
@numba.njit(cache=True)
def _residuals_into(y, w0, ur, ir, add_u, add_i, qu, qi, out):  # pragma: no cover - numba
    """(y - w0) - (add_u[u] + add_i[i] + qu[u] . qi[i]) per rating, into ``out``."""
    for r in range(ur.size):
        u, i = ur[r], ir[r]
        s = add_u[u] + add_i[i]
        for f in range(qu.shape[1]):
            s += qu[u, f] * qi[i, f]
        out[r] = (y[r] - w0) - s


@numba.njit(cache=True)
def _sub_gathered(e, d, rows):  # pragma: no cover - numba
    """``e -= d[rows]`` in place, without the rating-sized gathered copy."""
    for r in range(rows.size):
        e[r] -= d[rows[r]]


@numba.njit(cache=True)
def _entity_sums(rows, e, n):  # pragma: no cover - numba
    """``np.bincount(rows, weights=e, minlength=n)`` (summed in the same order) without
    bincount's int64 copy of int32 ``rows``."""
    out = np.zeros(n)
    for r in range(rows.size):
        out[rows[r]] += e[r]
    return out


@numba.njit(cache=True)
def _linear_block(
    indptr, ent, val, w, groups, mu, lam, alpha, counts, agg_e, eps
):  # pragma: no cover - numba
    """Gibbs draw of each linear weight w_j in turn.

    A rating of entity u has ``h = x_uj`` for w_j, so ``sum h^2 = sum_u x^2 n_u`` and
    ``sum h e = sum_u x E_u`` with ``E_u`` the entity's residual sum, kept current.
    """
    for j in range(w.size):
        h2 = 0.0
        he = 0.0
        for p in range(indptr[j], indptr[j + 1]):
            u = ent[p]
            x = val[p]
            h2 += x * x * counts[u]
            he += x * agg_e[u]
        g = groups[j]
        prec = alpha * h2 + lam[g]
        mean = (alpha * (he + w[j] * h2) + lam[g] * mu[g]) / prec
        new = mean + eps[j] / math.sqrt(prec)
        d = new - w[j]
        for p in range(indptr[j], indptr[j + 1]):
            agg_e[ent[p]] -= d * val[p] * counts[ent[p]]
        w[j] = new


@numba.njit(cache=True)
def _factor_block(indptr, ent, val, v, groups, mu, lam, alpha, st, eps):  # pragma: no cover
    """Gibbs draw of each v_jf (one factor f) in turn.

    For a rating of entity u with the other side's ``q_o``, ``dy/dv_jf = x (a_u + q_o)``
    with ``a_u = q_u - v_jf x`` (unchanged by v_jf itself). Per entity (a row of ``st``,
    see _Q.._F): ``q``, ``n_u``, ``E = sum e``, ``S1 = sum q_o``, ``S2 = sum q_o^2``,
    ``F = sum q_o e``, so ``sum h^2 = x^2 (n a^2 + 2 a S1 + S2)`` and ``sum h e = x (a E +
    F)``; after a draw moves v_jf by d, every residual of u moves by ``-d h`` and E, F, q
    follow.
    """
    for j in range(v.size):
        vj = v[j]
        h2 = 0.0
        he = 0.0
        for p in range(indptr[j], indptr[j + 1]):
            u = ent[p]
            x = val[p]
            a = st[u, _Q] - vj * x
            h2 += x * x * (st[u, _N] * a * a + 2.0 * a * st[u, _S1] + st[u, _S2])
            he += x * (a * st[u, _E] + st[u, _F])
        g = groups[j]
        prec = alpha * h2 + lam[g]
        mean = (alpha * (he + vj * h2) + lam[g] * mu[g]) / prec
        new = mean + eps[j] / math.sqrt(prec)
        d = new - vj
        for p in range(indptr[j], indptr[j + 1]):
            u = ent[p]
            x = val[p]
            a = st[u, _Q] - vj * x
            st[u, _E] -= d * x * (a * st[u, _N] + st[u, _S1])
            st[u, _F] -= d * x * (a * st[u, _S1] + st[u, _S2])
            st[u, _Q] += d * x
        v[j] = new


# The product's rating model (conf ``RATING_FM``; evaluate's ``fm-product``): only features
# the product has (ids, the user's rated-item set, the item's raters, genres, year bins; no
# demographics), a chain short enough for the recompute and thinned so the stored samples
# stay small. Chosen on ml100k-folds by cost and RMSE: bench/README.md.
PRODUCT_FM = {
    "factors": 10,
    "n_iter": 100,
    "burn_in": 20,
    "keep_every": 4,
    "item_raters": True,
    "demographics": False,
}


class FoldedFM:
    """What the product serves, as an estimator: :class:`BayesianFM` fitted on the ratings
    and items (no user features), each user's predictions from :meth:`BayesianFM.fold_in`
    of their training row (not their fitted samples: a served user is always folded in
    from live ratings), an item the fit never saw from its genres and year.

    Keyword-only hyper-parameters: ``BayesianFM``'s. Learned state: ``fm_``, ``matrix_``,
    ``items_`` (the ``ItemInfo`` given to :meth:`fit`).
    """

    def __init__(self, **params):
        self.params = params

    def fit(self, matrix: RatingMatrix, *, items: ItemInfo | None = None, users=None):
        """``users`` is accepted and ignored: the product has no user features."""
        self.fm_ = BayesianFM(**self.params).fit(matrix, items=items)
        self.matrix_, self.items_ = matrix, items
        return self

    def predict(self, users, items, *, item_ids=None) -> np.ndarray:
        """float64 clipped predictions for (user index, item index) pairs; index -1: a user
        with no training ratings (folded in from none), an item outside the training
        columns (its parts from the genres and year of ``item_ids``' entry, when given)."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = np.empty(users.shape)
        cold = np.flatnonzero(items < 0)
        if cold.size:
            info = self.items_ or ItemInfo(np.zeros(0, np.int64), [], np.zeros(0), [], [])
            sub = info.subset(np.zeros(cold.size, np.int64) if item_ids is None else
                              np.asarray(item_ids)[cold])  # fmt: skip
            cold_parts = self.fm_.cold_item_parts(sub.genres, sub.years)
        where = np.full(items.shape, -1, dtype=np.int64)
        where[cold] = np.arange(cold.size)
        csr = self.matrix_.csr
        order = np.argsort(users, kind="stable")
        bounds = np.flatnonzero(np.diff(users[order])) + 1
        for group in np.split(order, bounds):
            u = users[group[0]]
            row = slice(csr.indptr[u], csr.indptr[u + 1]) if u >= 0 else slice(0, 0)
            state = self.fm_.fold_in(csr.indices[row], csr.data[row])
            parts = np.empty((state.shape[0], group.size, state.shape[1]))
            warm = items[group] >= 0
            parts[:, warm] = self.fm_.item_samples_[:, items[group][warm]]
            if (~warm).any():
                parts[:, ~warm] = cold_parts[:, where[group][~warm]]
            out[group] = self.fm_.predict_folded(state, None, item_parts=parts)
        return out
