"""Accuracy and ranking metrics (pure numpy)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

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
    # one sparse relevance matrix, then every user's hits by one fancy-index lookup
    nrel = np.array([len(r) for r in relevant], dtype=np.float64)
    cols = np.concatenate([np.asarray(r, dtype=np.int64) for r in relevant]) if n else []
    width = int(max(n_items, top.max(initial=0) + 1, np.max(cols, initial=0) + 1))
    rel_m = sp.csr_matrix(
        (np.ones(len(cols), dtype=bool), (np.repeat(np.arange(n), nrel.astype(int)), cols)),
        shape=(n, width),
    )
    hit_m = np.asarray(rel_m[np.repeat(np.arange(n), at), np.maximum(top, 0).ravel()])
    rel = hit_m.reshape(n, at) & (top >= 0)
    h = rel.sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(nrel, at).astype(int) - 1] if n else np.zeros(0)
    cum = np.cumsum(rel, axis=1)
    ap = (rel * cum / np.arange(1, at + 1)).sum(axis=1) / np.minimum(nrel, at)
    shown = np.unique(top[top >= 0])
    mean = (lambda x: float(x.mean())) if n else (lambda x: float("nan"))
    return {
        f"precision@{at}": mean(h / at),
        f"recall@{at}": mean(h / nrel),
        f"ndcg@{at}": mean((rel * discount).sum(axis=1) / ideal),
        f"map@{at}": mean(ap),
        f"hit_rate@{at}": mean((h > 0).astype(float)),
        f"coverage@{at}": float(shown.size / n_items),
    }
