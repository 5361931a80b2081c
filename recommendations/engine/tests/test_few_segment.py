"""The few-ratings segment: loved co-occurrence, the coverage floor, and no demographics
in the product's configuration (issue 12, P3u)."""

from __future__ import annotations

import numpy as np
import pytest

from recommendations.engine import evaluate
from recommendations.engine.blend import FLOOR_AT, Blend, floor_slots, new_item_place, top_n
from recommendations.engine.cooccur import LovedCooccurrence
from recommendations.engine.data import UserInfo
from recommendations.engine.matrix import RatingMatrix

from .reference import random_ratings
from .test_cold_start import _items_info


def _brute(dense, mask, user):
    """sum over the user's rated items i, over every v who rated i, of v's love of j != i."""
    loved = np.maximum(dense - 3.0, 0.0) * mask
    out = np.zeros(dense.shape[1])
    for i in np.flatnonzero(mask[user]):
        for v in np.flatnonzero(mask[:, i]):
            for j in range(dense.shape[1]):
                if j != i:
                    out[j] += loved[v, j]
    return out


def test_loved_cooccurrence_equals_the_brute_force_sum():
    dense, mask, u, i, s = random_ratings(5, n_users=25, n_items=15, density=0.4)
    m = RatingMatrix.from_arrays(u, i, s)
    assert m.n_items == dense.shape[1] and m.n_users == dense.shape[0]
    got = LovedCooccurrence(keep=0, block=4).fit(m).score(m.csr)
    for user in range(m.n_users):
        np.testing.assert_allclose(got[user], _brute(dense, mask, user), atol=1e-12)


def test_loved_cooccurrence_keeps_each_rows_largest_and_only_the_head():
    dense, mask, u, i, s = random_ratings(6, n_users=40, n_items=20, density=0.4)
    m = RatingMatrix.from_arrays(u, i, s)
    full = LovedCooccurrence(keep=0).fit(m).weights_.toarray()
    kept = LovedCooccurrence(keep=3, block=7).fit(m).weights_.toarray()
    for r in range(m.n_items):
        assert (kept[r] > 0).sum() <= 3
        nz = kept[r] > 0
        np.testing.assert_allclose(kept[r][nz], full[r][nz])
        if nz.any():  # nothing dropped is larger than what was kept
            assert full[r][~nz].max(initial=0) <= kept[r][nz].min()
    head = LovedCooccurrence(keep=0, max_items=8).fit(m).weights_
    top8 = np.sort(np.argsort(-m.item_counts, kind="stable")[:8])
    outside = np.setdiff1d(np.arange(m.n_items), top8)
    assert head[outside].nnz == 0 and head[:, outside].nnz == 0


def test_the_floor_fills_the_last_places_from_the_tail_order():
    head = np.array([[9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.2, 0.1]])
    tail = np.array([[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0]])
    out = floor_slots(head, tail, 2, n=6)
    assert top_n(out, 8)[0].tolist() == [0, 1, 2, 3, 11, 10, 4, 5]
    assert floor_slots(head, tail, 0) is not None
    np.testing.assert_array_equal(floor_slots(head, tail, 0), head)


def test_the_floor_skips_rated_and_non_candidate_items():
    import scipy.sparse as sp

    head = np.arange(12, 0, -1, dtype=float)[None, :]
    tail = np.arange(12, dtype=float)[None, :]  # item 11 best, then 10, ...
    rated = sp.csr_matrix(([1.0, 1.0], ([0, 0], [0, 11])), shape=(1, 12))
    cand = np.ones(12, bool)
    cand[10] = False
    out = floor_slots(head, tail, 1, n=4, exclude=rated, candidates=cand)
    top = top_n(out, 4, exclude=rated, candidates=cand)[0]
    assert top.tolist() == [1, 2, 3, 9]


def test_the_tuned_floor_is_the_fewest_places_that_reach_min_coverage():
    """Every user's few-weights order is the same popularity list; each place given to the
    personal (many) order adds distinct items, and the tuner stops at the first count
    whose top 10s cover min_coverage of the items."""
    rng = np.random.default_rng(0)
    n_users, n_items = 20, 200
    pop = np.tile(np.arange(n_items, dtype=float), (n_users, 1))
    view = {
        "z": {"pop": pop, "ease": rng.normal(size=(n_users, n_items))},
        "relevant": [np.array([n_items - 1])] * n_users,
        "exclude": None,
        "candidates": None,
        "n_items": n_items,
    }
    blend = Blend(min_coverage=0.2, few_floor=None)
    blend.weights_ = {"few": {"pop": 1.0}, "many": {"ease": 1.0}}
    blend.validation_ = {}
    k, ndcg = blend._tune_floor([view])
    assert 0 < k < FLOOR_AT and ndcg == 1.0
    for places, enough in ((k - 1, False), (k, True)):
        top = top_n(floor_slots(pop, view["z"]["ease"], places), 10)
        assert (np.unique(top).size >= 0.2 * n_items) == enough


@pytest.mark.parametrize("name", ["product", "product-demo"])
def test_the_products_configuration_uses_no_user_demographics(name):
    """The site has no age, sex or occupation: evaluate's product configuration must not
    fit a demographic part even when the protocol offers one (product-demo does, for
    comparison)."""
    _, _, u, i, s = random_ratings(13, n_users=50, n_items=30, density=0.35)
    m = RatingMatrix.from_arrays(u, i, s)
    users = UserInfo(m.user_ids, np.eye(2)[m.user_ids % 2], ["a", "b"])
    side = evaluate.Side(items=_items_info(m.item_ids), users=users)
    model = evaluate.ALL_CONFIGS[name].make(m, side)
    assert (model.parts_.demo is not None) == (name == "product-demo")
    assert all("demo" not in w or name == "product-demo" for w in model.weights_.values())


def test_the_floor_gives_one_row_what_it_gives_a_block():
    """A request floors one row (a numpy sort), the list stage and evaluate a block
    (top_n): the same order, ties by lower index included."""
    rng = np.random.default_rng(4)
    head = rng.integers(0, 5, (6, 40)).astype(float)  # many ties
    tail = rng.integers(0, 5, (6, 40)).astype(float)
    block = floor_slots(head, tail, 3)
    for r in range(6):
        one = floor_slots(head[r : r + 1], tail[r : r + 1], 3)
        np.testing.assert_array_equal(top_n(one, 12), top_n(block[r : r + 1], 12))


def _brute_new_place(head, content, warm, at, rated):
    """The new-item place by its definition, one row at a time with Python sorts."""
    n_items = head.size
    ok = [j for j in range(n_items) if j not in rated]
    order = sorted(ok, key=lambda j: (-head[j], j))
    if any(not warm[j] for j in order[:at]):
        return order
    close = sorted((j for j in ok if content[j] > 0), key=lambda j: (-content[j], j))[:at]
    new = [j for j in close if not warm[j]]
    if not new:
        return order
    best = min(new, key=lambda j: (-content[j], j))
    first = order[: at - 1]
    return first + [best] + [j for j in order if j not in first and j != best]


def test_the_new_item_place_puts_the_closest_item_without_ratings_at_its_place():
    """Against a brute-force order on random rows with ties: a row whose best ``at`` hold
    no item without ratings, while its ``at`` closest by content do, gets the closest of
    those at place ``at``; a row that shows one already, or has none among its closest,
    keeps its order; rated items are never chosen."""
    import scipy.sparse as sp

    rng = np.random.default_rng(7)
    n_rows, n_items, at = 40, 30, 4
    head = rng.integers(0, 8, (n_rows, n_items)).astype(float)
    content = rng.integers(0, 3, (n_rows, n_items)).astype(float) * (rng.random((n_rows, 1)) < 0.8)
    warm = rng.random(n_items) < 0.8
    rated = sp.csr_matrix((rng.random((n_rows, n_items)) < 0.15).astype(float))
    out = new_item_place(head, content, warm, at, exclude=rated)
    top = top_n(out, n_items, exclude=rated)
    moved = kept = 0
    for r in range(n_rows):
        want = _brute_new_place(head[r], content[r], warm, at, set(rated[r].indices.tolist()))
        assert top[r][: len(want)].tolist() == want, r
        same = want == sorted(want, key=lambda j: (-head[r, j], j))
        moved, kept = moved + (not same), kept + same
    assert moved and kept  # both cases occur
    np.testing.assert_array_equal(new_item_place(head, content, warm, 0), head)
    np.testing.assert_array_equal(new_item_place(head, content, np.ones(n_items, bool), at), head)
    one = new_item_place(head[3:4], content[3:4], warm, at, exclude=rated[3])
    np.testing.assert_array_equal(top_n(one, n_items, exclude=rated[3]), top[3:4])


def test_a_new_user_gets_an_item_without_ratings_in_their_list_whatever_the_weights():
    """Blend.score with ``few_new_at``: a few-segment user whose weights give content
    nothing (popularity only) still sees an unrated item shaped like one they loved at
    that place; a many-segment user's list is untouched; without it the item is not
    shown."""
    import scipy.sparse as sp

    from .test_cold_start import _items_info

    dense, *_ = random_ratings(3, n_users=40, n_items=30, density=0.4)
    dense[:, -2:] = 0.0  # two items nobody rated
    u, i = np.nonzero(dense)
    m = RatingMatrix.from_arrays(u + 100, i + 5, dense[u, i], items=np.arange(30) + 5)
    weights = {
        "many": {"ease": 1.0, "als": 0.5},
        "few": {"pop": 1.0},
        "cold": {"content": 1.0},
    }
    few_row = np.where(dense[0] >= 4, dense[0], 0.0)[None, :]  # loved items: a profile
    few_row[0, np.flatnonzero(few_row[0])[1:]] = 0.0  # one of them (the demo newcomer)
    many_row = dense[2][None, :]
    users = sp.csr_matrix(np.vstack([few_row, many_row]))
    assert 0 < users[0].nnz <= 10 < users[1].nnz
    info = _items_info(m.item_ids)
    # the last item (nobody rated it) shaped like one the few user loved: a sequel
    loved = int(users[0].indices[0])
    info.titles[-1] = info.titles[loved] + " Returns"
    info.genres[-1] = list(info.genres[loved])
    info.years[-1] = info.years[loved]
    kw = {"als_iterations": 3}
    off = Blend(**kw).fit(m, items=info, weights=weights).score(users)
    on = Blend(**kw, few_new_at=3).fit(m, items=info, weights=weights).score(users)
    cold = np.flatnonzero(m.item_counts == 0)
    top_off, top_on = top_n(off, 10, exclude=users), top_n(on, 10, exclude=users)
    assert not np.isin(top_off[0][:3], cold).any()
    assert top_on[0][:2].tolist() == top_off[0][:2].tolist()
    assert top_on[0][2] == 29
    assert top_on[1].tolist() == top_off[1].tolist()


def test_the_few_validation_draws_its_share_of_all_users_among_those_with_ratings_to_hold():
    """Users with at most few_keep ratings can not be validated on: the draw takes the
    share few_users of all users from the others (P3u's train holds its own new users),
    and with every user eligible it is the plain draw."""
    rng = np.random.default_rng(2)
    lengths = np.where(np.arange(400) < 100, 3, 20)  # a quarter are new already
    rows = np.repeat(np.arange(400), lengths)
    cols = np.concatenate([rng.choice(50, n, replace=False) for n in lengths])
    m = RatingMatrix.from_arrays(rows, cols, np.full(rows.size, 4.0))
    blend = Blend(few_users=0.2, few_keep=5)
    draws = rng.random(m.n_users)
    none = np.zeros(m.n_users, bool)
    few = blend._draw_few(draws, m, none)
    assert not few[np.diff(m.csr.indptr) <= 5].any()
    assert abs(few.sum() - 0.2 * 400) < 20  # the share of all 400, not of the 300
    taken = few.copy()
    again = blend._draw_few(rng.random(m.n_users), m, taken)
    assert not (again & taken).any()
    keep = lengths[rows] == 20
    full = RatingMatrix.from_arrays(rows[keep], cols[keep], np.full(keep.sum(), 4.0))
    draws = rng.random(full.n_users)
    plain = draws < 0.2
    np.testing.assert_array_equal(blend._draw_few(draws, full, np.zeros(full.n_users, bool)), plain)


def test_the_few_segment_tunes_on_more_carves_only_while_its_users_are_few(monkeypatch):
    """few_folds > 1 adds disjoint carves of new users to the few segment's validation,
    but none once the views hold max_val_users users (a big matrix: no extra fit)."""
    _, _, u, i, s = random_ratings(14, n_users=120, n_items=30, density=0.4)
    m = RatingMatrix.from_arrays(u, i, s)
    made = []
    real = Blend._view

    def spy(self, parts, u, i, r, held, names, candidates):
        out = real(self, parts, u, i, r, held, names, candidates)
        if "corated" in names and out is not None:
            made.append(set(np.unique(u[held]).tolist()))
        return out

    monkeypatch.setattr(Blend, "_view", spy)
    small = {"ease_k": 5, "als_factors": 4, "als_iterations": 2, "rounds": 1, "cold_folds": 0}
    Blend(**small, few_folds=3).fit(m)
    assert len(made) == 3
    assert not (made[0] & made[1]) and not (made[0] & made[2]) and not (made[1] & made[2])
    made.clear()
    Blend(**small, few_folds=3, max_val_users=5).fit(m)
    assert len(made) == 1
