"""Factor models: implicit-feedback ALS for ranking, Bayesian biased MF for rating prediction.

:class:`ALS` wraps ``implicit``'s ``AlternatingLeastSquares`` (Hu, Koren & Volinsky 2008:
confidence ``1 + alpha * w_ui`` on a binary preference) for the item factors; a user's
factors are always one small solve against them (:meth:`ALS.user_factors`), so the model
scores a user's *live* ratings, and a new rating is folded in without a refit.

:class:`BayesianMF` predicts ratings as ``mu + b_u + b_i + p_u . q_i`` with the posterior
averaged by Gibbs sampling (Salakhutdinov & Mnih's BPMF with biases, Normal-Gamma
hyper-priors per dimension as in libFM's MCMC): the average over samples does not overfit
the way a point estimate does, which is what gains RMSE on small data. Each sweep is one
(factors+1)-sized solve per user and per item, done in a numba kernel over pre-drawn
normals, so it is deterministic for a seed whatever the thread count.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from .matrix import RatingMatrix

__all__ = ["ALS", "BayesianMF", "preference_weights"]


def preference_weights(rows, weighting: str) -> sp.csr_matrix:
    """float32 CSR with each rating turned into an implicit-feedback weight.

    ``binary``: 1 for every rating; ``rating``: the score; ``liked``: ``max(score - 2, 0.5)``
    (a 1-2 star rating is weak, not negative, evidence of interest).
    """
    rows = sp.csr_matrix(rows)
    # (memory: the weights computed from the scores as float32, as before, without a
    # float32 copy of the whole matrix first; the index arrays copied once)
    if weighting == "binary":
        data = np.ones(rows.nnz, dtype=np.float32)
    elif weighting == "rating":
        data = rows.data.astype(np.float32)
    elif weighting == "liked":
        data = rows.data.astype(np.float32)
        data -= np.float32(2.0)
        np.maximum(data, np.float32(0.5), out=data)
    else:
        raise ValueError(f"unknown weighting {weighting!r}")
    return sp.csr_matrix((data, rows.indices.copy(), rows.indptr.copy()), shape=rows.shape)


class ALS:
    """Implicit-feedback ALS (``implicit`` library) with an exact per-user fold-in.

    Learned state: ``item_factors_`` float64 (n_items, factors), ``gram_`` float64
    (factors, factors) = ``Y^T Y``.
    """

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        iterations: int = 15,
        weighting: str = "binary",
        random_state: int = 0,
    ):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.weighting = weighting
        self.random_state = random_state

    def fit(self, matrix: RatingMatrix) -> ALS:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):  # implicit parallelises itself; BLAS threads fight it
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.random_state,
            )
            model.fit(preference_weights(matrix.csr, self.weighting), show_progress=False)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float64)
        self.gram_ = self.item_factors_.T @ self.item_factors_
        return self

    def user_factors(self, rows) -> np.ndarray:
        """float64 (n_rows, factors): for each row the exact minimiser of
        ``sum_i c_ui (p_ui - x . y_i)^2 + regularization |x|^2`` over all items, with
        ``p_ui = 1`` and ``c_ui = 1 + alpha w_ui`` where rated, else ``p = 0, c = 1``.

        One (factors x factors) solve per row: this is the incremental update's fold-in.
        """
        w = preference_weights(rows, self.weighting)
        y = self.item_factors_
        out = np.zeros((w.shape[0], y.shape[1]))
        eye = self.regularization * np.eye(y.shape[1])
        for r in range(w.shape[0]):
            a, b = w.indptr[r], w.indptr[r + 1]
            if a == b:
                continue
            yi = y[w.indices[a:b]]
            c = self.alpha * w.data[a:b].astype(np.float64)
            lhs = self.gram_ + (yi.T * c) @ yi + eye
            out[r] = np.linalg.solve(lhs, yi.T @ (1.0 + c))
        return out

    def score(self, rows) -> np.ndarray:
        """float64 (n_rows, n_items): ``x_u . y_i`` for users given by their rating rows."""
        return self.user_factors(rows) @ self.item_factors_.T


class BayesianMF:
    """Biased matrix factorisation with the posterior averaged by Gibbs sampling.

    Prediction: the mean over kept samples of ``mu + b_u + b_i + p_u . q_i``, clipped to
    ``clip``. Learned state: ``global_mean_``, ``user_samples_`` / ``item_samples_`` float32
    (n_kept, n_users / n_items, factors + 1) with the bias in column 0.
    """

    def __init__(
        self,
        *,
        factors: int = 10,
        n_iter: int = 200,
        burn_in: int = 50,
        keep_every: int = 1,
        init_std: float = 0.1,
        clip: tuple = (1.0, 5.0),
        seed: int = 0,
    ):
        self.factors = factors
        self.n_iter = n_iter
        self.burn_in = burn_in
        self.keep_every = keep_every
        self.init_std = init_std
        self.clip = clip
        self.seed = seed

    def fit(self, matrix: RatingMatrix) -> BayesianMF:
        rng = np.random.default_rng(self.seed)
        d = self.factors + 1
        mu = matrix.global_mean
        csr, csc = matrix.csr, matrix.csc
        nu, ni = matrix.n_users, matrix.n_items
        u_par = rng.normal(0, self.init_std, (nu, d))
        i_par = rng.normal(0, self.init_std, (ni, d))
        u_par[:, 0] = 0.0
        i_par[:, 0] = 0.0
        alpha = 1.0
        hyper_u = (np.zeros(d), np.ones(d))
        hyper_i = (np.zeros(d), np.ones(d))
        kept_u, kept_i = [], []
        r_users = csr.data - mu
        r_items = csc.data - mu
        for it in range(self.n_iter):
            hyper_u = _sample_hyper(rng, u_par)
            _gibbs_side(
                csr.indptr,
                csr.indices,
                r_users,
                i_par,
                u_par,
                alpha,
                hyper_u[0],
                hyper_u[1],
                rng.standard_normal((nu, d)),
            )
            hyper_i = _sample_hyper(rng, i_par)
            _gibbs_side(
                csc.indptr,
                csc.indices,
                r_items,
                u_par,
                i_par,
                alpha,
                hyper_i[0],
                hyper_i[1],
                rng.standard_normal((ni, d)),
            )
            sse = _sse(csr.indptr, csr.indices, r_users, u_par, i_par)
            alpha = rng.gamma(1.0 + csr.nnz / 2.0, 1.0 / (1.0 + sse / 2.0))
            if it >= self.burn_in and (it - self.burn_in) % self.keep_every == 0:
                kept_u.append(u_par.astype(np.float32))
                kept_i.append(i_par.astype(np.float32))
        if not kept_u:
            kept_u, kept_i = [u_par.astype(np.float32)], [i_par.astype(np.float32)]
        self.global_mean_ = mu
        self.user_samples_ = np.stack(kept_u)
        self.item_samples_ = np.stack(kept_i)
        return self

    def predict(self, users, items) -> np.ndarray:
        """float64 predictions for index pairs; -1 (unknown) contributes neither bias nor
        factors (an unknown user gets ``mu + b_i``)."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = np.zeros(users.shape)
        for su, si in zip(self.user_samples_, self.item_samples_, strict=True):
            pu = np.where((users >= 0)[:, None], su[np.maximum(users, 0)], 0.0)
            qi = np.where((items >= 0)[:, None], si[np.maximum(items, 0)], 0.0)
            out += pu[:, 0] + qi[:, 0] + np.einsum("ij,ij->i", pu[:, 1:], qi[:, 1:])
        out = self.global_mean_ + out / len(self.user_samples_)
        return np.clip(out, *self.clip)


def _sample_hyper(rng, par):
    """Normal-Gamma hyper-prior per dimension (mu0 = 0, beta0 = 1, a0 = b0 = 1)."""
    n = par.shape[0]
    mean = par.mean(axis=0)
    var_sum = ((par - mean) ** 2).sum(axis=0)
    beta_n = 1.0 + n
    mu_n = n * mean / beta_n
    a_n = 1.0 + n / 2.0
    b_n = 1.0 + 0.5 * (var_sum + n * mean**2 / beta_n)
    lam = rng.gamma(a_n, 1.0 / b_n)
    m = rng.normal(mu_n, 1.0 / np.sqrt(beta_n * lam))
    return m, lam


@numba.njit(cache=True, parallel=True)
def _gibbs_side(indptr, indices, resid, other, par, alpha, m, lam, eps):  # pragma: no cover
    """Draw every row of ``par`` from its Gaussian conditional given ``other``.

    Row r's prediction of entry (r, c) is ``par[r, 0] + other[c, 0] + par[r,1:].other[c,1:]``;
    ``resid`` holds rating - mu per entry.
    """
    n, d = par.shape
    for r in numba.prange(n):
        a = np.diag(lam.copy())
        b = lam * m
        for p in range(indptr[r], indptr[r + 1]):
            c = indices[p]
            z = other[c].copy()
            y = resid[p] - z[0]
            z[0] = 1.0
            for s in range(d):
                b[s] += alpha * z[s] * y
                for t in range(d):
                    a[s, t] += alpha * z[s] * z[t]
        chol = np.linalg.cholesky(a)
        mean = np.linalg.solve(a, b)
        par[r] = mean + np.linalg.solve(chol.T, eps[r])


@numba.njit(cache=True)
def _sse(indptr, indices, resid, upar, ipar):  # pragma: no cover - numba
    s = 0.0
    for r in range(indptr.size - 1):
        for p in range(indptr[r], indptr[r + 1]):
            c = indices[p]
            e = resid[p] - upar[r, 0] - ipar[c, 0]
            for t in range(1, upar.shape[1]):
                e -= upar[r, t] * ipar[c, t]
            s += e * e
    return s
