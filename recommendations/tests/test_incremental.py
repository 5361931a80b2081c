"""The incremental update's rows equal a full recompute's from the same ratings, with the
BM25 weights and baselines held fixed (random data, fixed seeds; new users and items)."""

import numpy as np
import pytest

from recommendations.engine import Baselines, RatingMatrix, bm25_weight, compute_neighbours
from recommendations.incremental import BM25_B, BM25_K1, PatchableModel


def _random_ratings(rng, n_users=70, n_items=45, n=900):
    drawn = zip(rng.integers(0, n_users, n), rng.integers(0, n_items, n), strict=True)
    pairs = sorted({(int(u), int(i)) for u, i in drawn})
    users = np.array([u for u, _ in pairs]) * 3 + 7  # database ids are not indices
    items = np.array([i for _, i in pairs]) * 5 + 11
    scores = rng.integers(1, 11, len(pairs)) / 2
    return {(int(u), int(i)): float(s) for u, i, s in zip(users, items, scores, strict=True)}


def _matrix(ratings):
    keys = sorted(ratings)
    return RatingMatrix.from_arrays(
        [u for u, _ in keys], [i for _, i in keys], [ratings[k] for k in keys]
    )


def _held_fixed_reference(base, model, ratings):
    """A full computation's inputs from ``ratings`` with the base's idf, mean profile
    length and baselines (new items: idf of a count of 0; new users and items: bias 0)."""
    m = _matrix(ratings)
    idf = np.log(base.n_users) - np.log1p(base.item_counts.astype(float))
    idf_by_id = dict(zip(base.item_ids.tolist(), idf.tolist(), strict=True))
    idf_new = np.log(base.n_users)
    avg = base.user_counts.mean()
    rows = np.repeat(np.arange(m.n_users), m.user_counts)
    length = m.user_counts[rows] / avg
    r = m.csr.data
    w = r * (BM25_K1 + 1) / (BM25_K1 * (1 - BM25_B + BM25_B * length) + r)
    w *= np.array([idf_by_id.get(int(i), idf_new) for i in m.item_ids])[m.csr.indices]
    csr = m.csr.copy()
    csr.data = w
    ranking = RatingMatrix(csr=csr, user_ids=m.user_ids, item_ids=m.item_ids)
    b = Baselines()
    b.global_mean_ = model.mu
    bu = dict(zip(model.user_ids.tolist(), model.bu.tolist(), strict=True))
    bi = dict(zip(model.item_ids.tolist(), model.bi.tolist(), strict=True))
    b.user_bias_ = np.array([bu.get(int(u), 0.0) for u in m.user_ids])
    b.item_bias_ = np.array([bi.get(int(i), 0.0) for i in m.item_ids])
    return m, ranking, b


def _full_row(matrix, kind, row_id, **kwargs):
    ids = matrix.user_ids if kind == "user" else matrix.item_ids
    r = int(np.searchsorted(ids, row_id))
    nb = compute_neighbours(matrix, kind=kind, rows=(r, r + 1), dtype=np.float64, **kwargs)
    n = int(np.count_nonzero(nb.indices[0] >= 0))
    return ids[nb.indices[0, :n]], nb.scores[0, :n], nb.support[0, :n]


def _assert_same(incremental, full):
    ids, scores, support = incremental
    assert len(full[0]) > 0
    assert ids.tolist() == full[0].tolist()
    np.testing.assert_allclose(scores, full[1], rtol=1e-9, atol=1e-12)
    assert support.tolist() == full[2].tolist()


def test_row_weights_are_the_engines_bm25_before_any_change():
    ratings = _random_ratings(np.random.default_rng(1))
    base = _matrix(ratings)
    ranking = bm25_weight(base)
    model = PatchableModel(base, ranking, Baselines().fit(base))
    user_id = int(base.user_ids[3])
    mine = {i: s for (u, i), s in ratings.items() if u == user_id}
    u = model.set_user_ratings(user_id, list(mine), list(mine.values()))  # the same ratings
    np.testing.assert_allclose(model.user_row(u)[2], ranking.csr[u].data, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_incremental_rows_equal_a_full_recompute_with_weights_and_baselines_held(seed):
    rng = np.random.default_rng(seed)
    ratings = _random_ratings(rng)
    base = _matrix(ratings)
    model = PatchableModel(base, bm25_weight(base), Baselines().fit(base))

    users = base.user_ids.tolist()
    items = base.item_ids.tolist()
    new_item, new_user = max(items) + 1000, max(users) + 1000
    changes = [
        # an existing user rates more (one of them an item nobody has rated yet) and
        # drops one rating; a new user rates five; another user drops all but two
        (users[0], {**dict.fromkeys(items[:6], 4.5), new_item: 5.0}, [items[0], new_item]),
        (new_user, {i: float(1 + k % 5) for k, i in enumerate(items[3:8])}, items[3:8]),
        (users[5], None, [items[10]]),
    ]
    for user_id, new_ratings, changed in changes:
        theirs = {i: s for (u, i), s in ratings.items() if u == user_id}
        if new_ratings is None:
            new_ratings = dict(list(theirs.items())[:2])
        else:
            new_ratings = {**dict(list(theirs.items())[1:]), **new_ratings}
        for i in theirs:
            del ratings[(user_id, i)]
        ratings.update({(user_id, i): s for i, s in new_ratings.items()})
        order = sorted(new_ratings)
        u = model.set_user_ratings(user_id, order, [new_ratings[i] for i in order])

        m, ranking, baselines = _held_fixed_reference(base, model, ratings)
        cos = {"measure": "cosine", "shrinkage": 0.0}
        _assert_same(model.user_neighbours(u, 10), _full_row(ranking, "user", user_id, k=10, **cos))
        for item_id in changed:
            j = int(model.item_indices([item_id])[0])
            by_cosine, by_pearson = model.item_rows(j, k_cosine=8, k_pearson=30, shrinkage=100.0)
            _assert_same(by_cosine, _full_row(ranking, "item", item_id, k=8, **cos))
            full = _full_row(
                m, "item", item_id, k=30, measure="pearson_baseline", shrinkage=100.0,
                baselines=baselines,
            )  # fmt: skip
            _assert_same(by_pearson, full)
