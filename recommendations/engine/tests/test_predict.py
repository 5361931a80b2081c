"""k-NN predictions (means / baseline, item / user) against a plain-loop reference."""

from __future__ import annotations

import numpy as np
import pytest

from recommendations.engine import (
    Baselines,
    RatingMatrix,
    compute_neighbours,
    predict,
    predict_batch,
)

from .reference import random_ratings


def _loop_prediction(m, b, nb, u, i, method, k, min_k):
    """Surprise's rule written out: k most similar rated neighbours, positive ones count."""
    dense = m.csr.toarray()
    mask = np.zeros(m.shape, bool)
    mask[m.csr.nonzero()] = True
    if nb.kind == "item":
        target, cands = i, [j for j in range(m.n_items) if mask[u, j] and j != i]
    else:
        target, cands = u, [v for v in range(m.n_users) if mask[v, i] and v != u]
    idx, sc = nb.row(target)
    sim = dict(zip(idx.tolist(), sc.tolist(), strict=True))
    ranked = sorted(((sim.get(c, 0.0), c) for c in cands), key=lambda t: (-t[0], t[1]))[:k]
    if method == "baseline":
        ref = b.predict([u], [i])[0]
    else:
        ref = m.item_means[i] if nb.kind == "item" else m.user_means[u]
    num = den = 0.0
    used = 0
    for s, c in ranked:
        if s > 0:
            uu, ii = (u, c) if nb.kind == "item" else (c, i)
            if method == "baseline":
                nref = b.predict([uu], [ii])[0]
            else:
                nref = m.item_means[ii] if nb.kind == "item" else m.user_means[uu]
            num += s * (dense[uu, ii] - nref)
            den += s
            used += 1
    if used < min_k or den == 0:
        return ref, 0
    return ref + num / den, used


@pytest.mark.parametrize("kind", ["item", "user"])
@pytest.mark.parametrize("method", ["means", "baseline"])
@pytest.mark.parametrize("min_k", [1, 3])
def test_batch_and_single_predictions_equal_loop_reference(kind, method, min_k):
    """With full neighbour lists, batch and single predictions equal the loop rule (1e-9),
    and the single form reports exactly the contributing neighbours."""
    _, _, u, i, s = random_ratings(21, n_users=25, n_items=20, density=0.4)
    m = RatingMatrix.from_arrays(u, i, s)
    b = Baselines().fit(m)
    n = m.n_items if kind == "item" else m.n_users
    nb = compute_neighbours(
        m,
        kind=kind,
        measure="pearson_baseline",
        k=n - 1,
        shrinkage=10,
        baselines=b,
        dtype=np.float64,
    )
    users = np.repeat(np.arange(m.n_users), m.n_items)
    items = np.tile(np.arange(m.n_items), m.n_users)
    est, used = predict_batch(m, nb, users, items, method=method, k=5, min_k=min_k, baselines=b)
    for t in range(0, users.size, 7):
        ref, ref_used = _loop_prediction(m, b, nb, users[t], items[t], method, 5, min_k)
        assert est[t] == pytest.approx(ref, abs=1e-9)
        p = predict(m, nb, users[t], items[t], method=method, k=5, min_k=min_k, baselines=b)
        assert p.value == pytest.approx(ref, abs=1e-9)
        assert p.actual_k == ref_used
        if ref_used:
            assert used[t] == ref_used
            assert np.all(np.diff(p.similarities) <= 0) and np.all(p.similarities > 0)


def test_unknown_user_or_item_gets_partial_baseline():
    """Unknown ids (-1 / None) are normal: the answer is the baseline of what is known."""
    _, _, u, i, s = random_ratings(2, n_users=10, n_items=8, density=0.5)
    m = RatingMatrix.from_arrays(u, i, s)
    b = Baselines().fit(m)
    nb = compute_neighbours(m, kind="item", measure="cosine", k=5)
    est, used = predict_batch(m, nb, [-1, 0, -1], [0, -1, -1], method="baseline", baselines=b)
    assert est.tolist() == pytest.approx(
        [b.global_mean_ + b.item_bias_[0], b.global_mean_ + b.user_bias_[0], b.global_mean_]
    )
    assert used.tolist() == [0, 0, 0]
    p = predict(m, nb, None, 3, method="means")
    assert p.value == pytest.approx(m.item_means[3]) and p.actual_k == 0


def test_clip_bounds_predictions():
    """clip keeps every estimate inside the rating scale."""
    _, _, u, i, s = random_ratings(3, n_users=20, n_items=15, density=0.5)
    m = RatingMatrix.from_arrays(u, i, s)
    b = Baselines(reg_user=0, reg_item=0).fit(m)
    nb = compute_neighbours(m, kind="user", measure="pearson", k=10, shrinkage=0)
    users = np.repeat(np.arange(m.n_users), m.n_items)
    items = np.tile(np.arange(m.n_items), m.n_users)
    est, _ = predict_batch(m, nb, users, items, baselines=b, clip=(1, 5))
    assert est.min() >= 1 and est.max() <= 5


def test_baseline_method_requires_baselines():
    m = RatingMatrix.from_arrays([1, 2], [1, 1], [3.0, 4.0])
    nb = compute_neighbours(m, kind="item", k=1)
    with pytest.raises(ValueError):
        predict_batch(m, nb, [0], [0], method="baseline")
