"""Top-N recommendations and fallbacks."""

from __future__ import annotations

import numpy as np
import pytest

from recommendations.engine import (
    RatingMatrix,
    best_rated,
    bm25_weight,
    compute_neighbours,
    damped_means,
    most_popular,
    recommend,
    recommend_batch,
)

from .reference import random_ratings


@pytest.fixture(scope="module")
def model():
    _, _, u, i, s = random_ratings(8, n_users=60, n_items=40, density=0.25)
    m = RatingMatrix.from_arrays(u, i, s)
    item_nb = compute_neighbours(bm25_weight(m), kind="item", measure="cosine", k=8, shrinkage=0)
    user_nb = compute_neighbours(bm25_weight(m), kind="user", measure="cosine", k=10, shrinkage=0)
    return m, item_nb, user_nb


@pytest.mark.parametrize("parts", ["item", "user", "both"])
def test_single_user_equals_batch(model, parts):
    """recommend() on a user's own row gives the same top-N as recommend_batch()."""
    m, item_nb, user_nb = model
    kw = {
        "item_neighbours": item_nb if parts in ("item", "both") else None,
        "user_neighbours": user_nb if parts in ("user", "both") else None,
    }
    batch = recommend_batch(m, np.arange(m.n_users), n=5, **kw)
    for u in range(m.n_users):
        items, scores = m.user_row(u)
        rec = recommend(items, scores, matrix=m, user=u, n=5, **kw)
        assert rec.items.tolist() == [x for x in batch[u].tolist() if x >= 0]


def test_item_part_equals_hand_sum(model):
    """Item-only scores are sum_i r_ui * sim(i, j) over the user's items, normalised by the max."""
    m, item_nb, _ = model
    items, scores = m.user_row(3)
    S = item_nb.to_csr(m.n_items).toarray()
    expect = scores @ S[items]
    expect[items] = 0
    expect /= expect.max()
    rec = recommend(items, scores, item_neighbours=item_nb, n=m.n_items)
    np.testing.assert_allclose(rec.scores, expect[rec.items], atol=1e-6)
    assert set(rec.items.tolist()) == set(np.flatnonzero(expect > 0).tolist())


def test_rated_hidden_and_non_candidates_are_excluded(model):
    """Rated and hidden items never appear; candidates restrict the result."""
    m, item_nb, user_nb = model
    items, scores = m.user_row(0)
    full = recommend(items, scores, item_neighbours=item_nb, matrix=m, user=0, n=40)
    hidden = full.items[:2]
    cands = full.items[2:6]
    rec = recommend(
        items,
        scores,
        item_neighbours=item_nb,
        user_neighbours=user_nb,
        matrix=m,
        user=0,
        hidden=hidden,
        candidates=cands,
        n=10,
    )
    assert not set(rec.items.tolist()) & (set(items.tolist()) | set(hidden.tolist()))
    assert set(rec.items.tolist()) <= set(cands.tolist())


def test_live_ratings_change_recommendations_and_give_reasons(model):
    """A new user unknown to the model gets item-based results from live ratings alone, each
    with the rated items that produced it as the reason."""
    m, item_nb, user_nb = model
    rated = np.array([1, 2])
    rec = recommend(
        rated, [5.0, 4.0], item_neighbours=item_nb, user_neighbours=user_nb, matrix=m, user=None
    )
    assert rec.items.size > 0
    for j, why in zip(rec.items, rec.because_items, strict=True):
        assert why.size >= 1 and set(why.tolist()) <= {1, 2}
        nbs = {int(r): set(item_nb.row(r)[0].tolist()) for r in why}
        assert all(j in nbs[int(r)] for r in why)
    assert all(w.size == 0 for w in rec.because_users)


def test_user_reasons_are_neighbours_who_rated_the_item(model):
    m, _, user_nb = model
    items, scores = m.user_row(5)
    rec = recommend(items, scores, user_neighbours=user_nb, matrix=m, user=5)
    nbs = set(user_nb.row(5)[0].tolist())
    dense = m.csr.toarray()
    vs, sims = user_nb.row(5)
    positive = vs[sims > 0]
    for t, (j, why) in enumerate(zip(rec.items, rec.because_users, strict=True)):
        assert why.size >= 1
        assert set(why.tolist()) <= nbs and all(dense[v, j] > 0 for v in why)
        # How many neighbours rated it, and the sum of their ratings (the reason line).
        theirs = dense[positive, j]
        assert rec.neighbour_counts[t] == np.count_nonzero(theirs)
        assert rec.neighbour_sums[t] == pytest.approx(theirs.sum(), abs=1e-12)


def test_no_ratings_and_no_user_gives_empty_result(model):
    m, item_nb, _ = model
    rec = recommend([], [], item_neighbours=item_nb)
    assert rec.items.size == 0


def test_fallbacks_rank_by_count_and_damped_mean():
    """most_popular orders by count, best_rated by Bayesian average; both honour
    candidates and exclusions and break ties by lower index."""
    m = RatingMatrix.from_arrays(
        [1, 2, 3, 1, 2, 1, 4], [10, 10, 10, 20, 20, 30, 40], [3, 3, 3, 5, 5, 5, 1.0], items=[50]
    )
    items, counts = most_popular(m, n=10)
    assert items.tolist() == [0, 1, 2, 3] and counts.tolist() == [3, 2, 1, 1]
    dm = damped_means(m, damping=1.0)
    g = m.global_mean
    assert dm[1] == pytest.approx((10 + g) / 3)
    items, vals = best_rated(m, n=2, damping=1.0)
    assert items.tolist() == [1, 2]
    items, _ = best_rated(m, n=5, damping=1.0, candidates=[0, 3, 4], exclude=[3])
    assert items.tolist() == [0]
    mask = np.zeros(m.n_items, bool)
    mask[[2, 3]] = True
    assert most_popular(m, candidates=mask)[0].tolist() == [2, 3]


@pytest.mark.parametrize("floor", [2.5, 3.0, 3.5])
def test_items_the_neighbours_rated_low_on_average_are_left_out(model, floor):
    """min_neighbour_mean drops exactly the items whose neighbours' mean rating (dense
    brute force) is below it; the rest keep their blended order."""
    m, item_nb, user_nb = model
    dense = m.csr.toarray()
    for u in range(0, m.n_users, 7):
        items, scores = m.user_row(u)
        kw = {"item_neighbours": item_nb, "user_neighbours": user_nb, "matrix": m, "user": u}
        vs, sims = user_nb.row(u)
        theirs = dense[vs[sims > 0]]
        counts = np.count_nonzero(theirs, axis=0)
        means = theirs.sum(axis=0) / np.maximum(counts, 1)
        negative = set(np.flatnonzero((counts > 0) & (means < floor)).tolist())
        plain = recommend(items, scores, n=m.n_items, **kw)
        kept = recommend(items, scores, n=m.n_items, min_neighbour_mean=floor, **kw)
        assert not set(kept.items.tolist()) & negative
        assert set(kept.items.tolist()) == set(plain.items.tolist()) - negative
        assert (kept.neighbour_sums >= floor * kept.neighbour_counts - 1e-9).all()
