"""An ideal low-pass graph filter over the user-item graph (GF-CF, Shen et al. 2021).

With the ratings ``R`` (users x items, the scores as values), ``d_u`` / ``d_i`` the row and
column sums and ``R~ = D_u^-1/2 R D_i^-1/2`` (the normalised graph), let ``V`` (n_items, k)
be ``R~``'s top ``k`` right singular vectors: the item graph ``R~^T R~``'s ``k`` smoothest
signals. A user's scores are their row filtered through them:

    ``s_u = (r_u D_i^-1/2) V V^T D_i^1/2``

which keeps only the low frequencies of the user's signal (what the item graph's main
directions say about it), then restores the items' scale. Items without ratings score 0.
It is a factor model whose user part is one small product, so a new rating folds in at
once (``score`` takes the live row), and fitting is one truncated SVD of a sparse matrix.

Why: on ml100k-ua it carries signal the product blend lacks (added to its scores, a
scratch look at the test split: 0.3273 -> 0.3343 at k 64, bench/README tenth round).
GF-CF's linear filter (``r_u R~^T R~``) added nothing there, so only the ideal part is
kept. Not the product's: weighted on the blend's validation carve, ua 0.3273 -> 0.3310
(carve seeds 0-2 mean 0.3246 -> 0.3265; with the centred EASE 0.3313, mean 0.3307) and P3u
0.4022 -> 0.3982 (with the centred EASE 0.4002): short of the 0.34 target (evaluate
``product-lowpass``).

Cost: the SVD (ARPACK, start vector fixed so fits repeat) is products with ``R~`` and
``R~^T``, O(nnz) each: 3.2 CPU s at 1M synthetic ratings (4k items), 57 at 10M (10k items)
(``bench_models --models lowpass``); memory two (n_items, k) float64 arrays; scoring
O(nnz(row) k + n_items k) a user.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from .ease import weighted_rows
from .matrix import RatingMatrix

__all__ = ["LowPass"]


class LowPass:
    """Learned state: ``into_`` float64 (n_items, k) ``D_i^-1/2 V`` and ``out_`` (n_items,
    k) ``D_i^1/2 V``, so ``score(rows) = weighted(rows) @ into_ @ out_.T``."""

    def __init__(self, *, k: int = 64, weighting: str = "rating"):
        self.k = k
        self.weighting = weighting

    def fit(self, matrix: RatingMatrix) -> LowPass:
        x = weighted_rows(matrix.csr, self.weighting)
        du = np.asarray(x.sum(axis=1)).ravel()
        di = np.asarray(x.sum(axis=0)).ravel()
        inv_u = np.where(du > 0, 1.0 / np.sqrt(np.where(du > 0, du, 1.0)), 0.0)
        inv_i = np.where(di > 0, 1.0 / np.sqrt(np.where(di > 0, di, 1.0)), 0.0)
        norm = sp.csr_matrix(sp.diags(inv_u) @ x @ sp.diags(inv_i))
        k = int(min(self.k, min(norm.shape) - 1))
        if k < 1:
            raise ValueError(f"k must leave at least one singular value out: {norm.shape}")
        start = np.full(min(norm.shape), 1.0 / np.sqrt(min(norm.shape)))
        _, _, vt = sla.svds(norm, k=k, v0=start)
        v = vt.T
        self.into_ = v * inv_i[:, None]
        self.out_ = v * np.sqrt(np.maximum(di, 0.0))[:, None]
        return self

    def score(self, rows) -> np.ndarray:
        """float64 (n_rows, n_items) scores for users given by their rating rows (CSR in
        this model's item index space; live ratings for a fold-in)."""
        x = weighted_rows(sp.csr_matrix(rows), self.weighting)
        return np.asarray(x @ self.into_) @ self.out_.T
