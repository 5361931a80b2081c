"""BayesianFM against the factorization-machine formula computed directly on tiny data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from recommendations.engine.data import ItemInfo, UserInfo
from recommendations.engine.fm import BayesianFM
from recommendations.engine.matrix import RatingMatrix

WIDE = (-1e9, 1e9)  # no clipping: compare the raw formula


def _tiny(seed=0, nu=12, ni=9):
    rng = np.random.default_rng(seed)
    pairs = [(u, i) for u in range(nu) for i in range(ni) if rng.random() < 0.5]
    u = np.array([p[0] for p in pairs]) + 100
    i = np.array([p[1] for p in pairs]) + 10
    m = RatingMatrix.from_arrays(u, i, rng.integers(1, 6, len(pairs)).astype(float))
    years = np.array([1990.0, 1995, 2001, np.nan, 1980, 1990, 1991, 1999, 2003])[:ni]
    genres = [["x"], ["y", "x"], [], ["z"], ["x"], ["y"], ["z", "y"], ["x"], []][:ni]
    info = ItemInfo(np.arange(10, 10 + ni), ["t"] * ni, years, genres, [[]] * ni)
    users = UserInfo(np.arange(100, 100 + nu), np.eye(3)[rng.integers(0, 3, nu)], list("abc"))
    return m, info, users


def _brute(fm, x):
    """w0 + sum_j w_j x_j + sum_{j<l} <v_j, v_l> x_j x_l, row by row."""
    out = fm.w0_ + x @ fm.w_
    for a, b in itertools.combinations(range(x.shape[1]), 2):
        out = out + (fm.v_[a] @ fm.v_[b]) * x[:, a] * x[:, b]
    return out


def test_prediction_is_the_fm_formula_over_every_feature_pair():
    """With one kept sample (the chain's final state) the block-wise prediction equals the
    direct O(p^2) formula on the dense feature rows: ids, demographics, the rated-item set,
    genres, year bins and the item's rater set."""
    m, info, users = _tiny()
    fm = BayesianFM(factors=3, n_iter=6, burn_in=5, clip=WIDE, item_raters=True, seed=1)
    fm.fit(m, items=info, users=users)
    uu = np.repeat(np.arange(m.n_users), m.n_items)
    ii = np.tile(np.arange(m.n_items), m.n_users)
    x = fm.design(uu, ii)
    # id, 3 demographics, 9 rated-set | id, 3 genres, 4 five-year bins, 12 raters
    assert x.shape[1] == 12 + 3 + 9 + 9 + 3 + 4 + 12
    np.testing.assert_allclose(fm.predict(uu, ii), _brute(fm, x), atol=2e-5)


def test_fold_in_is_the_mean_of_the_user_id_conditional():
    """fold_in solves (alpha Z'Z + diag lam) theta = alpha Z'(y - base) + lam mu for the
    user's id parameters, Z and base taken from the direct formula by varying them."""
    m, info, users = _tiny(2)
    fm = BayesianFM(factors=2, n_iter=4, burn_in=3, clip=WIDE, seed=3)
    fm.fit(m, items=info, users=users)
    u = 5
    items, y = m.csr[u].indices, m.csr[u].data
    alpha, mu, lam = fm.fold_alpha_[0], fm.fold_mu_[0], fm.fold_lam_[0]
    x = fm.design(np.full(m.n_items, u), np.arange(m.n_items))
    k = fm.factors

    def formula(theta):
        saved_w, saved_v = fm.w_[u], fm.v_[u].copy()
        fm.w_[u], fm.v_[u] = theta[0], theta[1:]
        out = _brute(fm, x)
        fm.w_[u], fm.v_[u] = saved_w, saved_v
        return out

    base = formula(np.zeros(k + 1))
    z = np.column_stack([formula(np.eye(k + 1)[d]) - base for d in range(k + 1)])
    a = alpha * z[items].T @ z[items] + np.diag(lam)
    theta = np.linalg.solve(a, alpha * z[items].T @ (y - base[items]) + lam * mu)
    state = fm.fold_in(items, y, features=users.features[u])
    np.testing.assert_allclose(
        fm.predict_folded(state, np.arange(m.n_items)), formula(theta), atol=2e-5
    )


def test_a_new_rating_moves_the_folded_in_user_and_a_new_user_has_an_answer():
    m, info, users = _tiny(4)
    fm = BayesianFM(factors=2, n_iter=30, burn_in=10, seed=0).fit(m, items=info, users=users)
    items, y = m.csr[0].indices, m.csr[0].data
    before = fm.predict_folded(fm.fold_in(items, y), np.arange(m.n_items))
    unrated = np.setdiff1d(np.arange(m.n_items), items)[0]
    after = fm.predict_folded(
        fm.fold_in(np.r_[items, unrated], np.r_[y, 5.0]), np.arange(m.n_items)
    )
    assert not np.allclose(before, after)
    assert after[unrated] > before[unrated]
    fresh = fm.predict_folded(fm.fold_in([], [], features=users.features[1]), [0, 1, 2])
    assert np.isfinite(fresh).all() and ((fresh >= 1) & (fresh <= 5)).all()


def test_recovers_a_low_rank_signal_better_than_item_means():
    """Ratings from a rank-2 model plus noise 0.3: held-out RMSE well under item means'."""
    rng = np.random.default_rng(0)
    nu, ni = 60, 40
    p, q = rng.normal(0, 1, (nu, 2)), rng.normal(0, 1, (ni, 2))
    full = 3.0 + p @ q.T + rng.normal(0, 0.3, (nu, ni))
    mask = rng.random((nu, ni)) < 0.5
    test = ~mask
    uu, ii = np.nonzero(mask)
    m = RatingMatrix.from_arrays(uu, ii, full[mask])
    fm = BayesianFM(factors=2, n_iter=80, burn_in=30, clip=WIDE, seed=0).fit(m)
    tu, ti = np.nonzero(test)
    err = fm.predict(tu, ti) - full[test]
    item_means = m.item_means[ti] - full[test]
    assert np.sqrt(np.mean(err**2)) < 0.6 * np.sqrt(np.mean(item_means**2))


def test_estimator_contract():
    m, _, _ = _tiny(5)
    with pytest.raises(TypeError):
        BayesianFM(3)  # keyword-only hyper-parameters
    fm = BayesianFM(factors=2, n_iter=5, burn_in=2)
    assert fm.fit(m) is fm
    first = fm.predict([0, 1], [0, 1])
    np.testing.assert_array_equal(fm.fit(m).predict([0, 1], [0, 1]), first)
    assert fm.predict([-1], [0]).shape == (1,)


def test_a_cold_item_is_the_formula_with_its_genres_and_the_id_prior_mean():
    """An item the fit never saw: its genres and year bin as features, its id parameters
    at the item id group's prior mean; equals the direct formula for such a row."""
    m, info, users = _tiny(5)
    fm = BayesianFM(factors=3, n_iter=6, burn_in=5, clip=WIDE, seed=2)
    fm.fit(m, items=info, users=users)
    u, ni = 4, m.n_items
    x = fm.design([u], [0])
    p_user = fm.user_block_.csr.shape[1]
    x[0, p_user:] = 0.0
    # genres sorted x, y, z; 5-year bins of 1980, 1990, 1995, 1999/2001/2003 -> 396, 398, 399, 400
    x[0, p_user + ni + 1] = 1.0  # "y"
    x[0, p_user + ni + 2] = 1.0  # "z"
    x[0, p_user + ni + 3 + 1] = 1.0  # 1991 -> bin 398
    x[0, p_user] = 1.0  # item 0's id column, its parameters set to the prior mean below
    fm.w_[p_user], fm.v_[p_user] = fm.item_mu_[0, 0], fm.item_mu_[0, 1:]
    parts = fm.cold_item_parts([["z", "y", "unknown genre"]], [1993.0])
    got = fm.predict_folded(fm.user_samples_[:, u].astype(float), None, item_parts=parts)
    np.testing.assert_allclose(got, _brute(fm, x), atol=2e-5)


def test_the_stored_parts_fold_in_predict_and_explain_as_the_estimator():
    m, info, users = _tiny(6)
    fm = BayesianFM(factors=2, n_iter=12, burn_in=4, keep_every=2, item_raters=True)
    fm.fit(m, items=info)
    arrays, config = fm.parts()
    stored = BayesianFM.from_parts({k: v.copy() for k, v in arrays.items()}, config)
    items, y = m.csr[3].indices, m.csr[3].data
    every = np.arange(m.n_items)
    state = fm.fold_in(items, y)
    np.testing.assert_array_equal(stored.fold_in(items, y), state)
    np.testing.assert_array_equal(
        stored.predict_folded(state, every), fm.predict_folded(state, every)
    )
    cold = fm.cold_item_parts([["x"]], [1990.0])
    np.testing.assert_array_equal(stored.cold_item_parts([["x"]], [1990.0]), cold)
    np.testing.assert_array_equal(
        stored.item_links(items, fm.item_samples_[:, 0]),
        fm.item_links(items, fm.item_samples_[:, 0]),
    )


def test_item_links_are_the_rated_items_interaction_terms_with_the_target():
    """x_j <v_j, sum_l x_l v_l> over the target's item-block columns l, per rated item j."""
    m, info, users = _tiny(7)
    fm = BayesianFM(factors=3, n_iter=6, burn_in=5, clip=WIDE, seed=4).fit(m, items=info)
    u, target = 2, 5
    items = m.csr[u].indices
    x = fm.design([u], [target])[0]
    p_user = fm.user_block_.csr.shape[1]
    q_item = x[p_user:] @ fm.v_[p_user:]
    cols = m.n_users + items  # the rated-item set's columns of the user block
    want = x[cols] * (fm.v_[cols] @ q_item)
    np.testing.assert_allclose(fm.item_links(items, fm.item_samples_[:, target]), want, atol=1e-5)


def test_folded_fm_predicts_each_user_from_their_fold_in_and_unseen_items_from_genres():
    """evaluate's fm-product: per user the fold-in of their training row (index -1: none),
    per unseen item (index -1) the parts from its genres and year."""
    from recommendations.engine.fm import FoldedFM

    m, info, _ = _tiny(8)
    est = FoldedFM(factors=2, n_iter=8, burn_in=2, keep_every=2).fit(m, items=info)
    fm = est.fm_
    users = np.array([0, 0, 3, -1, 3])
    items = np.array([1, -1, 2, 4, -1])
    ids = np.array(
        [11, 13, 12, 14, 17]
    )  # the -1s: as if items 13 and 17 (genres z / x) were unseen
    got = est.predict(users, items, item_ids=ids)
    row0, row3 = m.csr[0], m.csr[3]
    s0, s3 = fm.fold_in(row0.indices, row0.data), fm.fold_in(row3.indices, row3.data)
    cold13 = fm.cold_item_parts([info.genres[3]], [info.years[3]])
    cold17 = fm.cold_item_parts([info.genres[7]], [info.years[7]])
    want = [
        fm.predict_folded(s0, [1])[0],
        fm.predict_folded(s0, None, item_parts=cold13)[0],
        fm.predict_folded(s3, [2])[0],
        fm.predict_folded(fm.fold_in([], []), [4])[0],
        fm.predict_folded(s3, None, item_parts=cold17)[0],
    ]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_the_fused_pass_moves_the_residuals_and_sums_them_for_the_next_draw():
    """_sync_aggregates equals its two steps done apart, on random data: the residuals
    after one side's factor moved, then the other side's per-entity sums (E, S1, S2, F)."""
    from recommendations.engine.fm import _aggregates, _sync_aggregates

    rng = np.random.default_rng(3)
    n, n_moved, n_next = 500, 30, 20
    moved, nxt = rng.integers(0, n_moved, n), rng.integers(0, n_next, n)
    e = rng.normal(size=n)
    dq, dc = rng.normal(size=n_moved), rng.normal(size=n_moved)
    q_sync, q_agg = rng.normal(size=n_next), rng.normal(size=n_moved)
    want_e = e - (dq[moved] * q_sync[nxt] + dc[moved])
    qo = q_agg[moved]
    parts = (want_e, qo, qo**2, qo * want_e)
    want = np.column_stack([np.bincount(nxt, p, minlength=n_next) for p in parts])

    got = _sync_aggregates(moved, nxt, e, dq, dc, q_sync, q_agg, n_next)
    np.testing.assert_allclose(e, want_e)
    np.testing.assert_allclose(got[:, 2:], want)
    np.testing.assert_allclose(_aggregates(nxt, moved, want_e, q_agg, n_next)[:, 2:], want)


def test_the_in_place_passes_give_the_floats_of_the_array_expressions():
    """The fit's rating-sized passes that write in place (memory at 25M ratings) give
    bit for bit what the array expressions they replace give: the residuals
    ``y - w0 - prediction`` (the prediction summed in the same order), ``e -= d[rows]``
    and ``np.bincount(rows, weights=e)``; and the raters block is the transpose's."""
    from recommendations.engine.fm import (
        _entity_sums,
        _implicit,
        _raters,
        _residuals_into,
        _sub_gathered,
    )

    rng = np.random.default_rng(4)
    n, nu, ni, k = 3000, 70, 40, 5
    ur = rng.integers(0, nu, n).astype(np.int32)
    ir = rng.integers(0, ni, n).astype(np.int32)
    y = rng.integers(1, 11, n) / 2.0
    add_u, add_i = rng.normal(size=nu), rng.normal(size=ni)
    qu, qi = rng.normal(size=(nu, k)), rng.normal(size=(ni, k))
    pred = add_u[ur] + add_i[ir]
    for f in range(k):
        pred = pred + qu[ur, f] * qi[ir, f]
    e = np.full(n, np.nan)
    _residuals_into(y, 3.6, ur, ir, add_u, add_i, qu, qi, e)
    np.testing.assert_array_equal(e, y - 3.6 - pred)

    d = rng.normal(size=nu)
    want = e - d[ur]
    _sub_gathered(e, d, ur)
    np.testing.assert_array_equal(e, want)
    np.testing.assert_array_equal(_entity_sums(ur, e, nu + 3), np.bincount(ur, e, nu + 3))

    m, _, _ = _tiny(2)
    got, want = _raters(m.csr), _implicit(m.csc.T.tocsr())
    assert got.shape == want.shape == (m.n_items, m.n_users)
    for a in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(got, a), getattr(want, a))


def _low_rank(seed=0, nu=60, ni=40):
    rng = np.random.default_rng(seed)
    p, q = rng.normal(0, 1, (nu, 2)), rng.normal(0, 1, (ni, 2))
    full = 3.0 + p @ q.T + rng.normal(0, 0.3, (nu, ni))
    mask = rng.random((nu, ni)) < 0.5
    return full, mask


def test_a_warm_start_continues_each_known_column_and_starts_new_ones_at_the_group_mean():
    """Columns are matched by group and key (ids, genres, year bins), not position: a
    previous fit without the first user and the first item hands its values to the same
    ids; the new user's and item's columns start at their group's mean (w exactly, v
    within the init noise), and the groups' priors continue."""
    from recommendations.engine.fm import _Side

    m, info, _ = _tiny(4)
    coo = m.csr.tocoo()
    keep = (coo.row > 0) & (coo.col > 0)
    old_m = RatingMatrix.from_arrays(
        m.user_ids[coo.row[keep]], m.item_ids[coo.col[keep]], coo.data[keep]
    )
    old = BayesianFM(factors=3, n_iter=6, burn_in=2, init_std=1e-9).fit(old_m, items=info)
    arrays, meta = old.chain_state()
    new = BayesianFM(factors=3, init_std=1e-9)
    bu, bi = new._blocks(m, info, None)
    rng = np.random.default_rng(0)
    for block, tag, rows in ((bu, "u", m.n_users), (bi, "i", m.n_items)):
        side = _Side(block, np.zeros(0, np.int64), np.ones(rows), rng, 3, 1e-9)
        side.start_from(arrays, meta["names"][tag], tag, rng, 1e-9)
        old_keys = arrays[f"chain_{tag}_keys"]
        for j in range(block.keys.size):
            g = block.groups[j]
            og = meta["names"][tag].index(block.names[g])
            same = (old_keys == block.keys[j]) & (arrays[f"chain_{tag}_groups"] == og)
            hit = np.flatnonzero(same)
            if hit.size:
                assert side.w[j] == arrays[f"chain_{tag}_w"][hit[0]]
                np.testing.assert_array_equal(side.v[j], arrays[f"chain_{tag}_v"][hit[0]])
            else:
                assert side.w[j] == arrays[f"chain_{tag}_mu"][og, 0]
                np.testing.assert_allclose(side.v[j], arrays[f"chain_{tag}_mu"][og, 1:], atol=1e-7)
        np.testing.assert_array_equal(side.lam_v, arrays[f"chain_{tag}_lam"][:, 1:])
        new_cols = ~np.isin(block.keys[block.groups == 0], old_keys)
        assert new_cols.sum() == 1  # the first user's, the first item's id column
        # q and the within-block interactions follow the started parameters
        np.testing.assert_allclose(side.q, block.csr @ side.v)


def test_a_warm_start_from_a_converged_chain_needs_no_burn_in():
    """Three sweeps started from a long chain's state predict held-out ratings about as
    well as the long chain, and better than three sweeps from the prior."""
    full, mask = _low_rank()
    uu, ii = np.nonzero(mask)
    m = RatingMatrix.from_arrays(uu, ii, full[mask])
    tu, ti = np.nonzero(~mask)

    def rmse(fm):
        return np.sqrt(np.mean((fm.predict(tu, ti) - full[~mask]) ** 2))

    long = BayesianFM(factors=2, n_iter=80, burn_in=30, clip=WIDE, seed=0).fit(m)
    short = {"factors": 2, "n_iter": 3, "burn_in": 0, "clip": WIDE, "seed": 1}
    warm = BayesianFM(**short).fit(m, warm=long.chain_state())
    cold = BayesianFM(**short).fit(m)
    assert rmse(warm) < rmse(long) * 1.1
    assert rmse(warm) < rmse(cold) * 0.8
