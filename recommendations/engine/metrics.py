"""Accuracy and ranking metrics (pure numpy)."""

from __future__ import annotations

import numpy as np

__all__ = ["rmse", "mae", "ranking_metrics"]


def rmse(pred, truth) -> float:
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


def mae(pred, truth) -> float:
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    return float(np.mean(np.abs(pred - truth)))


def ranking_metrics(top: np.ndarray, relevant: list[np.ndarray], n_items: int, at: int = 10):
    """Precision, recall, NDCG (binary gains), MAP and hit rate at ``at``, and coverage.

    Args:
        top: int (n_users, >= at) recommended item indices per evaluated user, best first
            (-1 padding allowed).
        relevant: per evaluated user, int array of relevant item indices (non-empty).
        n_items: catalogue size for coverage.
    Returns:
        dict with ``precision@at``, ``recall@at``, ``ndcg@at``, ``map@at``, ``hit_rate@at``
        averaged over users, and ``coverage@at``: distinct items in anyone's top ``at`` over
        ``n_items``.

    AP@at divides by ``min(|relevant|, at)``; NDCG's ideal ranks all relevant items first.
    """
    top = np.asarray(top)[:, :at]
    n = top.shape[0]
    discount = 1.0 / np.log2(np.arange(2, at + 2))
    prec = np.zeros(n)
    rec = np.zeros(n)
    ndcg = np.zeros(n)
    ap = np.zeros(n)
    hit = np.zeros(n)
    for u in range(n):
        rel = np.isin(top[u], relevant[u]) & (top[u] >= 0)
        nrel = len(relevant[u])
        h = rel.sum()
        prec[u] = h / at
        rec[u] = h / nrel
        hit[u] = h > 0
        ndcg[u] = (rel * discount).sum() / discount[: min(nrel, at)].sum()
        cum = np.cumsum(rel)
        ap[u] = (rel * cum / np.arange(1, at + 1)).sum() / min(nrel, at)
    shown = np.unique(top[top >= 0])
    return {
        f"precision@{at}": float(prec.mean()),
        f"recall@{at}": float(rec.mean()),
        f"ndcg@{at}": float(ndcg.mean()),
        f"map@{at}": float(ap.mean()),
        f"hit_rate@{at}": float(hit.mean()),
        f"coverage@{at}": float(shown.size / n_items),
    }
