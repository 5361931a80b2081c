"""The second stage over the blend's candidates (engine/rerank.py) against brute force."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recommendations.engine.blend import PRODUCT_BLEND, Blend, _standardise, top_n
from recommendations.engine.lowpass import LowPass
from recommendations.engine.matrix import RatingMatrix
from recommendations.engine.rerank import (
    DAY,
    FEATURES,
    Logistic,
    Reranked,
    _graph_scores,
    _time_features,
    _with_data,
    candidate_features,
    carve_users,
    labels,
)

from .reference import random_ratings


def _matrix(seed=0, n_users=40, n_items=30, density=0.3):
    _, _, u, i, s = random_ratings(seed, n_users=n_users, n_items=n_items, density=density)
    return RatingMatrix.from_arrays(u, i, s)


def _times(m, seed=0):
    t = np.random.default_rng(seed).integers(0, 200, m.nnz) * DAY / 4
    return RatingMatrix(_with_data(m.csr, t), m.user_ids, m.item_ids)


def test_time_features_match_a_loop_over_each_pair():
    """Days after the user's last rating, share and count of the item's ratings in the
    user's window (+- 1 day), median gap: as computed one pair at a time."""
    m = _matrix()
    tm = _times(m)
    users = np.arange(m.n_users)
    cand = np.random.default_rng(1).integers(0, m.n_items, (m.n_users, 7))
    got = _time_features(tm, users, cand)
    dense = tm.csr.toarray()
    rated = m.csr.toarray() != 0
    for u in users:
        mine = dense[u][rated[u]]
        for k, j in enumerate(cand[u]):
            theirs = np.sort(dense[:, j][rated[:, j]])
            after = max(theirs[0] - mine.max(), 0) / DAY if theirs.size else 0.0
            inside = np.sum((theirs >= mine.min() - DAY) & (theirs <= mine.max() + DAY))
            share = inside / theirs.size if theirs.size else 0.0
            med = theirs[(theirs.size - 1) // 2] if theirs.size else np.nan
            gap = np.nan_to_num((med - np.median(mine)) / (100 * DAY))
            want = [np.log1p(after), share, np.log1p(inside), gap]
            np.testing.assert_allclose([g[u, k] for g in got], want, atol=1e-9)


def test_graph_scores_match_dense_rp3beta_and_user_knn():
    m = _matrix(seed=2)
    r = (m.csr.toarray() != 0).astype(float)
    rows = m.csr[:5]
    rp3, knn = _graph_scores(m, rows, beta=0.5, k=4)
    pop = r.sum(0)
    p_ui = r / np.maximum(r.sum(1, keepdims=True), 1)
    p_iu = r.T / np.maximum(pop[:, None], 1)
    w = (p_iu @ p_ui) / np.maximum(pop, 1) ** 0.5
    np.fill_diagonal(w, 0.0)
    np.testing.assert_allclose(rp3, p_ui[:5] @ w, atol=1e-12)
    norms = np.sqrt(np.maximum(r.sum(1), 1))
    want = np.zeros((5, m.n_items))
    for u in range(5):
        sim = r @ r[u] / norms / norms[u]
        sim[sim >= 1 - 1e-9] = 0.0  # the user themself (and any twin)
        kth = np.sort(sim)[-4]
        for v in range(m.n_users):
            if sim[v] >= kth:
                want[u] += sim[v] * r[v]
    np.testing.assert_allclose(knn, want, atol=1e-12)


def test_logistic_stops_where_its_regularised_gradient_vanishes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6, 3))
    y = (x[..., 0] + rng.normal(size=(50, 6)) > 0.5).astype(float)
    model = Logistic(lam=2.0).fit(x, y)
    z = (x.reshape(-1, 3) - model.mean_) / model.std_
    p = 1 / (1 + np.exp(-(z @ model.coef_ + model.intercept_)))
    grad = z.T @ (p - y.ravel()) + 2.0 * model.coef_
    assert np.abs(grad).max() < 1e-3
    assert np.abs(np.sum(p - y.ravel())) < 1e-3
    assert model.coef_[0] > 0  # the feature that decides the label


def test_carve_holds_out_at_most_half_of_each_users_ratings():
    m = _matrix(seed=3)
    held = carve_users(m, hold=3, seed=5)
    per_user = np.add.reduceat(held, m.csr.indptr[:-1])
    n = np.diff(m.csr.indptr)
    np.testing.assert_array_equal(per_user, np.minimum(3, n // 2))
    assert not np.array_equal(held, carve_users(m, hold=3, seed=6))


def test_labels_mark_the_relevant_candidates():
    cand = np.array([[3, 1, 2], [0, 4, 5]])
    got = labels(cand, [np.array([2, 3]), np.array([], dtype=np.int64)])
    np.testing.assert_array_equal(got, [[1, 0, 1], [0, 0, 0]])


def test_reranked_reorders_only_stage_ones_top_n_and_never_a_rated_item():
    """The top n of stage one (fitted on the whole matrix) are the n best scores of the
    reranked list, in the logistic model's order; rated items stay below them."""
    m = _matrix(seed=4, n_users=60, n_items=40)
    tm = _times(m, seed=4)
    params = PRODUCT_BLEND | {"few_floor": 0, "min_coverage": 0.0}
    model = Reranked(blend=params, n=8, hold=3).fit(m, timestamps=tm.csr.data)
    assert model.model_.coef_.shape == (len(FEATURES) - 1,)  # no rating model: no feature
    rows = m.csr[:10]
    got = model.score(rows, user_ids=m.user_ids[:10])
    first = top_n(model.stage_one_.score(rows), 8, exclude=rows)
    top = top_n(got, 8, exclude=rows)
    for a, b in zip(first, top, strict=True):
        assert set(a[a >= 0]) == set(b[b >= 0])
    rated = sp.csr_matrix(rows).toarray() != 0
    low = np.take_along_axis(got, np.maximum(top, 0), axis=1).min(axis=1)
    assert (np.where(rated, got, -np.inf).max(axis=1) < low).all()


def test_the_second_stage_takes_the_lowpass_and_centred_ease_as_features_when_asked():
    """``parts`` adds blend components as features: their columns are the parts' z-scores
    at the candidates (the low-pass from its own fit), two more coefficients."""
    m = _matrix(seed=7, n_users=60, n_items=40)
    tm = _times(m, seed=7)
    params = PRODUCT_BLEND | {"few_floor": 0, "min_coverage": 0.0, "ease_max_items": None}
    params |= {"lowpass_k": 4, "ease_c_lam": 10.0}
    parts = ("ease", "als", "content", "pop", "lowpass", "ease_c")
    model = Reranked(blend=params, n=8, hold=3, parts=parts).fit(m, timestamps=tm.csr.data)
    assert model.model_.coef_.shape == (len(FEATURES) + 1,)
    # (a part the tuning weighs 0 is not fitted, and its column is 0): fixed weights here
    w = {"many": {"ease": 1.0, "lowpass": 0.5, "ease_c": 0.5}, "few": {"pop": 1.0}, "cold": {}}
    blend = Blend(**params).fit(m, timestamps=tm.csr.data, weights=w)
    users = np.arange(m.n_users)
    x, cand, _ = candidate_features(blend, m, tm, users, 8, parts=parts)
    z = _standardise(LowPass(k=4).fit(m).score(m.csr), np.ones(m.n_items, bool))
    at = FEATURES.index("pop") + 1  # the parts' columns follow in ``parts`` order
    np.testing.assert_allclose(x[:, :, at], np.take_along_axis(z, cand, axis=1), atol=1e-9)
    plain = candidate_features(blend, m, tm, users, 8)[0]
    assert plain.shape[2] == x.shape[2] - 2
