"""Dense brute-force references: slow, obviously-correct loops used only by the tests."""

from __future__ import annotations

import math

import numpy as np


def dense_similarity(
    dense, mask, *, measure, kind, shrinkage, min_support, resid=None, co_rated_norms=False
):
    """Full n x n similarity by definition, NaN where a pair is not a neighbour.

    dense: (n_users, n_items) ratings, mask: bool same shape (rated or not),
    resid: residuals r - b_ui (same shape) for pearson_baseline.
    """
    if kind == "user":
        vals, m = dense, mask
        other_means = _means(dense.T, mask.T)
        centred = np.where(mask, dense - other_means[None, :], 0.0)
        res = resid
    else:
        vals, m = dense.T, mask.T
        other_means = _means(dense, mask)
        centred = np.where(mask, dense - other_means[:, None], 0.0).T
        res = None if resid is None else resid.T
    n = vals.shape[0]
    out = np.full((n, n), np.nan)
    sup = np.zeros((n, n), dtype=int)
    for a in range(n):
        for b in range(n):
            if a == b:
                continue
            common = m[a] & m[b]
            c = int(common.sum())
            sup[a, b] = c
            if c == 0 or c < min_support:
                continue
            if measure in ("cosine", "adjusted_cosine"):
                v = vals if measure == "cosine" else centred
                x, y = v[a] * m[a], v[b] * m[b]
                num = float(np.sum(x[common] * y[common]))
                if co_rated_norms:
                    den = math.sqrt(np.sum(x[common] ** 2) * np.sum(y[common] ** 2))
                else:
                    den = math.sqrt(np.sum(x**2) * np.sum(y**2))
            elif measure == "pearson":
                x, y = vals[a][common], vals[b][common]
                xc, yc = x - x.mean(), y - y.mean()
                num = float(np.sum(xc * yc))
                den = math.sqrt(np.sum(xc**2) * np.sum(yc**2))
            else:
                x, y = res[a][common], res[b][common]
                num = float(np.sum(x * y))
                den = math.sqrt(np.sum(x**2) * np.sum(y**2))
            if den == 0:
                continue
            s = num / den
            if shrinkage:
                s *= c / (c + shrinkage)
            out[a, b] = s
    return out, sup


def _means(dense, mask):
    cnt = mask.sum(axis=1)
    tot = np.where(mask, dense, 0).sum(axis=1)
    glob = dense[mask].mean()
    return np.where(cnt > 0, tot / np.maximum(cnt, 1), glob)


def topk_from_dense(sim, k):
    """Reference top-k: higher score first, then lower index; -1/NaN padding."""
    n = sim.shape[0]
    idx = np.full((n, k), -1)
    sc = np.full((n, k), np.nan)
    for a in range(n):
        cand = [(-sim[a, b], b) for b in range(n) if not np.isnan(sim[a, b])]
        cand.sort()
        for t, (s, b) in enumerate(cand[:k]):
            idx[a, t] = b
            sc[a, t] = -s
    return idx, sc


def random_ratings(seed, n_users=30, n_items=25, density=0.3, levels=(1, 2, 3, 4, 5)):
    """Random integer ratings with fixed seed; some users/items end up empty or constant."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    dense = rng.choice(np.asarray(levels, float), size=(n_users, n_items))
    dense = np.where(mask, dense, 0.0)
    u, i = np.nonzero(mask)
    # external ids deliberately unlike indices
    return dense, mask, (u * 7 + 1000), (i * 3 + 5), dense[u, i]
