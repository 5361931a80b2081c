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


def _assert_same_up_to_ties(incremental, full):
    """As ``_assert_same``, but entries whose scores tie (to float tolerance) may come in
    any order: kept sums are patched by subtracting and adding terms, so they can differ
    from a fresh sum in the last bits, which reorders exact ties (a pair with one
    co-rater has a pearson of exactly +-1 before shrinkage)."""
    ids, scores, support = incremental
    np.testing.assert_allclose(scores, full[1], rtol=1e-9, atol=1e-12)
    got = dict(zip(ids.tolist(), support.tolist(), strict=True))
    want = dict(zip(full[0].tolist(), full[2].tolist(), strict=True))
    close = np.isclose(full[1][:, None], full[1][None, :], rtol=1e-9, atol=1e-12)
    for p in range(len(full[0])):
        group = np.flatnonzero(close[p])
        if group[-1] == len(full[0]) - 1:
            continue  # the last tie group may be cut at k differently
        assert {ids[q] for q in group} == {full[0][q] for q in group}
        assert got[int(ids[p])] == want[int(ids[p])]


def _assert_rows_equal_full(model, base, ratings, user_id, item_ids, *, ties=False):
    """The user's "people like you" row and these items' two rows equal a full
    computation's from ``ratings`` with the base's weights and baselines held."""
    m, ranking, baselines = _held_fixed_reference(base, model, ratings)
    cos = {"measure": "cosine", "shrinkage": 0.0}
    u = model.user_index(user_id)
    if any(k[0] == user_id for k in ratings):
        _assert_same(model.user_neighbours(u, 10), _full_row(ranking, "user", user_id, k=10, **cos))
    for item_id in item_ids:
        j = int(model.item_indices([item_id])[0])
        if not any(k[1] == item_id for k in ratings):
            continue
        by_cosine, by_pearson = model.item_rows(j, k_cosine=8, k_pearson=30, shrinkage=100.0)
        same = _assert_same_up_to_ties if ties else _assert_same
        same(by_cosine, _full_row(ranking, "item", item_id, k=8, **cos))
        full = _full_row(
            m, "item", item_id, k=30, measure="pearson_baseline", shrinkage=100.0,
            baselines=baselines,
        )  # fmt: skip
        same(by_pearson, full)


@pytest.mark.parametrize("kept", [False, True], ids=["computed", "kept-and-patched"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_incremental_rows_equal_a_full_recompute_with_weights_and_baselines_held(seed, kept):
    """Also when every item's sums were kept before the changes and are patched by each
    change (``kept``), rather than computed from the item's raters."""
    rng = np.random.default_rng(seed)
    ratings = _random_ratings(rng)
    base = _matrix(ratings)
    model = PatchableModel(
        base, bm25_weight(base), Baselines().fit(base), item_cache_min_raters=1 if kept else 10**9
    )
    if kept:
        for j in range(base.n_items):
            model.item_rows(j, k_cosine=8, k_pearson=30, shrinkage=100.0)
        assert model._cached.all()

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
        model.set_user_ratings(user_id, order, [new_ratings[i] for i in order])
        touched = sorted(set(theirs) | set(new_ratings))
        _assert_rows_equal_full(
            model, base, ratings, user_id, touched if kept else changed, ties=kept
        )


def test_rows_stay_exact_through_many_updates_with_a_small_kept_sums_budget():
    """Hundreds of updates of a few users (their pool segments replaced again and again,
    so the pool is compacted) with kept sums evicted and kept again under a small budget:
    the rows still equal a full computation's."""
    rng = np.random.default_rng(7)
    ratings = _random_ratings(rng)
    base = _matrix(ratings)
    row_bytes = base.n_items * 5 * 8
    model = PatchableModel(
        base, bm25_weight(base), Baselines().fit(base),
        item_cache_min_raters=1, item_cache_bytes=6 * row_bytes,
    )  # fmt: skip
    users = base.user_ids[:4].tolist() + [10**6]  # and a new user
    items = base.item_ids.tolist() + [10**6 + 1]  # and a new item
    compactions = 0
    for step in range(300):
        user_id = users[step % len(users)]
        item_id = items[int(rng.integers(len(items)))]
        if rng.random() < 0.2 and any(k[0] == user_id for k in ratings):
            theirs = [i for (u, i) in ratings if u == user_id]
            del ratings[(user_id, theirs[int(rng.integers(len(theirs)))])]
        else:
            ratings[(user_id, item_id)] = float(rng.integers(1, 11)) / 2
        mine = sorted((i, s) for (u, i), s in ratings.items() if u == user_id)
        used = model._pool_used
        model.set_user_ratings(user_id, [i for i, _ in mine], [s for _, s in mine])
        compactions += model._pool_used < used
        # as an update does: the user's row and the rated item's rows (kept once computed)
        if model.user_index(user_id) is not None and mine:
            model.user_neighbours(model.user_index(user_id), 10)
        j = int(model.item_indices([item_id])[0])
        if j >= 0:
            model.item_rows(j, k_cosine=8, k_pearson=30, shrinkage=100.0)
    assert compactions > 0 and 0 < model._cache_bytes <= 6 * row_bytes
    for user_id in users:
        _assert_rows_equal_full(model, base, ratings, user_id, [])
    _assert_rows_equal_full(model, base, ratings, users[0], items, ties=True)


_WARM_SCRIPT = """
import numpy as np
from recommendations.engine import Baselines, RatingMatrix, bm25_weight
from recommendations.incremental import PatchableModel
import recommendations.incremental as inc

rng = np.random.default_rng(3)
m = RatingMatrix.from_arrays(rng.integers(0, 60, 800), rng.integers(0, 40, 800),
                             rng.integers(1, 11, 800) / 2)
model = PatchableModel(m, bm25_weight(m), Baselines().fit(m), item_cache_min_raters=1)
kernels = [inc._user_dots, inc._overlay_user_dots, inc._accumulate_row, inc._item_sums,
           inc._overlay_item_sums]
if WARM:
    model.warm()
before = [list(k.signatures) for k in kernels]
for j in range(m.n_items):  # every item's sums kept, so each update patches them
    model.item_rows(j, k_cosine=5, k_pearson=5, shrinkage=100.0)
for step in range(20):
    user_id = int(m.user_ids[step % 5]) if step % 4 else 10**6 + step
    items = np.unique(rng.integers(0, 45, 12)) * 1 + 0
    ids = np.where(items < 40, m.item_ids[np.minimum(items, 39)], 10**6 + items)
    ids = np.unique(ids)
    u = model.set_user_ratings(user_id, ids, rng.integers(1, 11, ids.size) / 2)
    model.user_neighbours(u, 5)
    for j in model.item_indices(ids[:3]).tolist():
        model.item_rows(j, k_cosine=5, k_pearson=5, shrinkage=100.0)
after = [list(k.signatures) for k in kernels]
print([k.__name__ for k, b, a in zip(kernels, before, after) if a != b])
"""


def _new_signatures(warm: bool) -> str:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    script = f"WARM = {warm}\n{_WARM_SCRIPT}"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_warming_loads_every_kernel_signature_an_update_uses():
    """After ``warm()``, a fresh process's updates (new users and items, replaced rows,
    kept sums patched) load or compile no kernel: with a cold numba cache, compiling them
    inside the first update took 5.7 s (the first PUT of a browser test that runs the
    update eagerly)."""
    assert _new_signatures(warm=False) != "[]"  # the check can see a kernel being loaded
    assert _new_signatures(warm=True) == "[]"


@pytest.mark.parametrize("piece", [3, 2**22], ids=["many-pieces", "one-piece"])
def test_the_arrays_made_in_pieces_equal_those_made_at_once_to_the_bit(monkeypatch, piece):
    """``base_arrays`` makes the arrays over all ratings a piece of rows at a time (the
    recompute's prepare step saves them for every process): the same values, bit for bit,
    as the one-pass computation the model did for itself before."""
    import recommendations.incremental as inc
    from recommendations.engine.similarity import _csc_permutation

    monkeypatch.setattr(inc, "_PIECE", piece)
    base = _matrix(_random_ratings(np.random.default_rng(4)))
    ranking, baselines = bm25_weight(base), Baselines().fit(base)
    made = inc.base_arrays(base, ranking, baselines)
    w = ranking.csr.data
    rows = np.repeat(np.arange(base.n_users), base.user_counts)
    assert np.array_equal(made["residuals"], baselines.residuals(base))
    assert np.array_equal(made["bm25_by_item"], w[_csc_permutation(base)])
    assert np.array_equal(made["user_sq"], np.bincount(rows, weights=w**2, minlength=base.n_users))
    assert np.array_equal(
        made["item_sq"], np.bincount(base.csr.indices, weights=w**2, minlength=base.n_items)
    )
    # and the model built on them holds the state it held when it made its own
    model = PatchableModel(base, ranking, baselines)
    idf = np.log(base.n_users) - np.log1p(base.item_counts.astype(np.float64))
    assert np.array_equal(model.idf, idf)
    assert np.array_equal(model.inv_item, inc._inverse_norms(made["item_sq"]))
