"""The issue-12 models against closed-form or brute-force references on small data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.engine.blend import top_n
from recommendations.engine.content import ItemContent, ridge_map
from recommendations.engine.data import ItemInfo
from recommendations.engine.ease import EASE, TopKEASE, binary_rows
from recommendations.engine.factors import ALS, BayesianMF, _gibbs_side, preference_weights
from recommendations.engine.matrix import RatingMatrix

from .reference import random_ratings


def _matrix(seed=0, n_users=40, n_items=20, density=0.3):
    _, _, u, i, s = random_ratings(seed, n_users=n_users, n_items=n_items, density=density)
    return RatingMatrix.from_arrays(u, i, s)


def test_ease_columns_are_the_constrained_ridge_solutions():
    """Each column j of EASE's B solves min |X_j - X_{-j} b|^2 + lam |b|^2 (diag 0),
    checked column by column with the normal equations."""
    m = _matrix()
    lam = 7.0
    b = EASE(lam=lam).fit(m).weights_
    x = binary_rows(m.csr).toarray()
    g = x.T @ x
    n = m.n_items
    for j in range(n):
        rest = np.delete(np.arange(n), j)
        expect = np.linalg.solve(g[np.ix_(rest, rest)] + lam * np.eye(n - 1), g[rest, j])
        np.testing.assert_allclose(b[rest, j], expect, atol=1e-10)
        assert b[j, j] == 0.0


@pytest.mark.parametrize(
    ("weighting", "other"),
    [("rating", "binary"), ("centred", "rating")],
)
def test_weighted_ease_solves_the_ridge_columns_of_its_matrix_and_scores_by_them(weighting, other):
    """weighting="rating": X holds the scores, not 1 per rating; "centred": score - 3 on
    the rated cells (a 3-star rating a stored 0, a 1-star one pushing the other way), in
    the fit and the query."""
    m = _matrix(7)
    lam = 30.0
    model = EASE(lam=lam, weighting=weighting).fit(m)
    x = m.csr.toarray()
    if weighting == "centred":
        x = np.where(x > 0, x - 3.0, 0.0)
    g = x.T @ x
    n = m.n_items
    for j in range(n):
        rest = np.delete(np.arange(n), j)
        expect = np.linalg.solve(g[np.ix_(rest, rest)] + lam * np.eye(n - 1), g[rest, j])
        np.testing.assert_allclose(model.weights_[rest, j], expect, atol=1e-10)
        assert model.weights_[j, j] == 0.0
    np.testing.assert_allclose(model.score(m.csr[:5]), x[:5] @ model.weights_, atol=1e-12)
    assert not np.allclose(model.weights_, EASE(lam=lam, weighting=other).fit(m).weights_)


def test_topk_ease_with_every_neighbour_equals_ease():
    m = _matrix(1)
    dense = EASE(lam=3.0).fit(m).weights_
    topk = TopKEASE(lam=3.0, k=m.n_items).fit(m).weights_.toarray()
    np.testing.assert_allclose(topk, dense, atol=1e-10)


def test_ease_keeps_each_rows_largest_weights_and_a_budget_raises_the_keep_on_few_items():
    """keep prunes every row of B to its k largest weights by magnitude (the others 0);
    a budget of stored weights raises k to budget // items when that is more."""
    m = _matrix(7, n_items=20)
    full = EASE(lam=4.0).fit(m).weights_
    for keep, budget, expect in ((3, 0, 3), (3, 20 * 7, 7), (3, 20 * 2, 3)):
        model = EASE(lam=4.0, keep=keep, budget=budget).fit(m)
        assert model.keep_ == expect
        want = np.zeros_like(full)
        for r in range(full.shape[0]):  # brute force: each row's expect largest by |w|
            top = np.argsort(-np.abs(full[r]), kind="stable")[:expect]
            want[r, top] = full[r, top]
        np.testing.assert_allclose(model.weights_, want, atol=1e-12)
    assert EASE(lam=4.0, keep=0, budget=10**6).fit(m).keep_ == 0  # no keep: no pruning
    assert EASE(lam=4.0, keep=3, budget=10**6).fit(m).keep_ == 0  # keeps every weight


def test_ease_on_the_most_rated_items_is_ease_of_that_sub_catalogue():
    """max_items keeps the head: its weights are EASE on those columns alone, and the
    other items score 0."""
    m = _matrix(6, n_items=25)
    model = EASE(lam=4.0, max_items=10).fit(m)
    counts = m.item_counts
    head = np.sort(np.argsort(-counts, kind="stable")[:10])
    assert model.items_.tolist() == head.tolist()
    sub = RatingMatrix(m.csr[:, head], m.user_ids, m.item_ids[head])
    np.testing.assert_allclose(model.weights_, EASE(lam=4.0).fit(sub).weights_, atol=1e-12)
    scores = model.score(m.csr[:6])
    rest = np.setdiff1d(np.arange(25), head)
    assert (scores[:, rest] == 0).all()
    expect = binary_rows(m.csr[:6])[:, head] @ model.weights_
    np.testing.assert_allclose(scores[:, head], expect)


def test_topk_ease_keeps_at_most_k_weights_per_item_and_scores_by_a_sparse_product():
    m = _matrix(2, n_items=30)
    model = TopKEASE(lam=3.0, k=5).fit(m)
    per_column = np.diff(model.weights_.tocsc().indptr)
    assert per_column.max() <= 5 and per_column.sum() > 0
    rows = m.csr[:4]
    expect = (binary_rows(rows) @ model.weights_).toarray()
    np.testing.assert_allclose(model.score(rows), expect)


def test_the_dense_gram_is_scipys_product_bit_for_bit():
    """ease.gram (accumulated into the dense result, for memory) gives the very floats
    of scipy's ``(x.T @ x).toarray()``, on arbitrary floats as on star ratings."""
    from recommendations.engine.ease import gram

    rng = np.random.default_rng(5)
    x = sp.random(300, 60, density=0.2, random_state=2, format="csr")
    for data in (rng.normal(size=x.nnz), rng.integers(1, 11, x.nnz) / 2.0):
        x.data = data
        np.testing.assert_array_equal(gram(x), (x.T @ x).toarray())
    assert gram(sp.csr_matrix((4, 3))).shape == (3, 3)


@pytest.mark.parametrize("weighting", ["binary", "rating", "centred"])
def test_ease_with_a_head_and_pruning_is_the_plain_recipe_bit_for_bit(weighting, monkeypatch):
    """EASE.fit's memory-saving steps (the head's columns before the weighting, the Gram
    into the dense result, the pruning a block of rows at a time) give the very floats of
    the plain recipe: weight, take the head, scipy's Gram, inverse, -P / diag(P), each
    row's ``keep`` largest by magnitude in one partition."""
    from recommendations.engine import ease as ease_module
    from recommendations.engine.ease import weighted_rows

    monkeypatch.setattr(ease_module, "_ROWS", 7)  # several blocks, the last one short
    m = _matrix(8, n_users=120, n_items=40, density=0.35)
    model = EASE(lam=6.0, max_items=30, weighting=weighting, keep=5).fit(m)

    x = weighted_rows(m.csr, weighting)
    counts = np.diff(x.tocsc().indptr)
    head = np.sort(np.argsort(-counts, kind="stable")[:30])
    x = x[:, head]
    g = (x.T @ x).toarray()
    g[np.diag_indices_from(g)] += 6.0
    p = np.linalg.inv(g)
    b = p / -np.diag(p)
    b[np.diag_indices_from(b)] = 0.0
    drop = np.argpartition(-np.abs(b), 4, axis=1)[:, 5:]
    np.put_along_axis(b, drop, 0.0, axis=1)
    np.testing.assert_array_equal(model.items_, head)
    np.testing.assert_array_equal(model.weights_, b)
    assert model.keep_ == 5


def test_preference_weights_are_float32_weights_of_the_scores():
    m = _matrix(6)
    scores = m.csr.data.astype(np.float32)
    want = {
        "binary": np.ones_like(scores),
        "rating": scores,
        "liked": np.maximum(scores - 2.0, 0.5),
    }
    for name, data in want.items():
        got = preference_weights(m.csr, name)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got.data, data)
        np.testing.assert_array_equal(got.indices, m.csr.indices)
        assert not np.shares_memory(got.indices, m.csr.indices)


def test_als_fold_in_is_the_weighted_least_squares_solution():
    """ALS.user_factors equals the implicit-feedback objective's minimiser by lstsq."""
    m = _matrix(3, n_users=50, n_items=30, density=0.3)
    model = ALS(factors=4, regularization=0.5, alpha=3.0, iterations=3, weighting="liked")
    model.fit(m)
    rows = m.csr[:5]
    got = model.user_factors(rows)
    y = model.item_factors_
    w = preference_weights(rows, "liked").toarray()
    for r in range(5):
        c = 1.0 + model.alpha * w[r]
        p = (w[r] > 0).astype(float)
        a = np.vstack([np.sqrt(c)[:, None] * y, math.sqrt(model.regularization) * np.eye(4)])
        rhs = np.concatenate([np.sqrt(c) * p, np.zeros(4)])
        expect = np.linalg.lstsq(a, rhs, rcond=None)[0]
        np.testing.assert_allclose(got[r], expect, atol=1e-8)
    np.testing.assert_allclose(model.score(rows), got @ y.T)


def test_gibbs_step_without_noise_is_the_ridge_posterior_mean():
    """With the normal draws set to 0, a row's draw is the ridge solution of its ratings
    given the other side (bias column first, prior mean m, per-dimension precision lam)."""
    m = _matrix(4)
    rng = np.random.default_rng(0)
    d = 4
    other = rng.normal(size=(m.n_items, d))
    par = np.zeros((m.n_users, d))
    prior_m, lam, alpha = rng.normal(size=d), rng.uniform(1, 3, d), 2.0
    resid = m.csr.data - 3.0
    _gibbs_side(
        m.csr.indptr,
        m.csr.indices,
        resid,
        other,
        par,
        alpha,
        prior_m,
        lam,
        np.zeros((m.n_users, d)),
    )
    for r in range(m.n_users):
        cols, _ = m.user_row(r)
        z = other[cols].copy()
        y = resid[m.csr.indptr[r] : m.csr.indptr[r + 1]] - z[:, 0]
        z[:, 0] = 1.0
        a = alpha * z.T @ z + np.diag(lam)
        expect = np.linalg.solve(a, alpha * z.T @ y + lam * prior_m)
        np.testing.assert_allclose(par[r], expect, atol=1e-10)


def test_bayesian_mf_predicts_the_mean_over_kept_samples():
    m = _matrix(5)
    model = BayesianMF(factors=3, n_iter=6, burn_in=2, seed=1).fit(m)
    assert model.user_samples_.shape == (4, m.n_users, 4)
    u, i = np.array([0, 3, -1]), np.array([2, 5, 1])
    got = model.predict(u, i)
    for k in range(3):
        vals = []
        for su, si in zip(model.user_samples_, model.item_samples_, strict=True):
            pu = su[u[k]] if u[k] >= 0 else np.zeros(4)
            v = model.global_mean_ + pu[0] + si[i[k], 0] + pu[1:] @ si[i[k], 1:]
            vals.append(v)
        assert got[k] == pytest.approx(np.clip(np.mean(vals), 1, 5), abs=1e-5)
    again = BayesianMF(factors=3, n_iter=6, burn_in=2, seed=1).fit(m).predict(u, i)
    np.testing.assert_array_equal(got, again)  # deterministic for a seed


def _info(ids, genres, titles, years):
    return ItemInfo(
        item_ids=np.asarray(ids, dtype=np.int64),
        titles=titles,
        years=np.asarray(years, dtype=float),
        genres=genres,
        tags=[[] for _ in ids],
    )


def test_tfidf_by_hand():
    """Three items: A {Drama}, B {Drama, Comedy}, C {Comedy}; no years, no shared title
    words. idf = ln(4 / (1 + df)) + 1 for df = 2 each, rows L2-normalised."""
    info = _info(
        [1, 2, 3], [["Drama"], ["Drama", "Comedy"], ["Comedy"]], ["a", "b", "c"], [np.nan] * 3
    )
    m = RatingMatrix.from_arrays([1], [1], [4.0], items=[1, 2, 3])
    model = ItemContent().fit(m, info=info)
    assert model.vocabulary_ == ["g:comedy", "g:drama"]
    f = model.features_.toarray()
    np.testing.assert_allclose(f, [[0, 1], [math.sqrt(0.5), math.sqrt(0.5)], [1, 0]])
    # a user who rated A 5 (weight 5 - 3 = 2): scores are 2 * cosine with A
    rows = sp.csr_matrix(([5.0], ([0], [0])), shape=(1, 3))
    np.testing.assert_allclose(model.score(rows), [[2.0, 2 * math.sqrt(0.5), 0.0]])
    items, sims = model.similar(0)
    assert items.tolist() == [1] and sims[0] == pytest.approx(math.sqrt(0.5))


def test_tfidf_fields_and_unknown_items():
    info = _info([1, 2], [["Drama"], ["Drama"]], ["Star Wars", "Star Trek"], [1977, 1979])
    m = RatingMatrix.from_arrays([1], [1], [4.0], items=[1, 2, 99])
    model = ItemContent(min_df=2).fit(m, info=info)
    assert set(model.vocabulary_) == {"g:drama", "d:1970", "y:1975", "w:star"}
    assert model.features_[2].nnz == 0  # item 99 has no side information: a zero row


def test_ridge_map_matches_lstsq():
    rng = np.random.default_rng(0)
    f = sp.csr_matrix(rng.random((12, 4)))
    target = rng.normal(size=(12, 2))
    known = np.arange(12) < 9
    got = ridge_map(f, target, known, lam=0.7)
    x = np.hstack([np.ones((12, 1)), f.toarray()])
    a = np.vstack([x[known], math.sqrt(0.7) * np.eye(5)[1:]])
    rhs = np.vstack([target[known], np.zeros((4, 2))])
    w = np.linalg.lstsq(a, rhs, rcond=None)[0]
    np.testing.assert_allclose(got, x @ w, atol=1e-10)


def test_top_n_breaks_ties_by_the_given_order_and_respects_masks():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 4, (30, 25)).astype(float)
    tb = rng.permutation(25)
    cand = rng.random(25) < 0.7
    ex = sp.csr_matrix(rng.random((30, 25)) < 0.2)
    got = top_n(s, 6, exclude=ex, candidates=cand, tiebreak=tb)
    dense_ex = ex.toarray()
    for r in range(30):
        ok = cand & ~dense_ex[r]
        order = [j for j in np.lexsort((tb, -s[r])) if ok[j]][:6]
        assert got[r, : len(order)].tolist() == order
        assert (got[r, len(order) :] == -1).all()
