"""Cold-start protocols (P3u, P3i), side-information files, and the blend's validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recommendations.engine import blend as blend_module
from recommendations.engine import evaluate
from recommendations.engine.blend import Blend, top_n
from recommendations.engine.data import (
    ItemInfo,
    default_ml100k_dir,
    read_items_csv,
    read_ml100k_timestamps,
)
from recommendations.engine.matrix import RatingMatrix
from recommendations.engine.metrics import ranking_metrics
from recommendations.engine.splits import newitems_split, newusers_split

from .reference import random_ratings

ML100K = default_ml100k_dir()
needs_ml100k = pytest.mark.skipif(
    not (ML100K / "u.data").exists(), reason=f"MovieLens 100k not found in {ML100K}"
)


def _first_by_time(u, i, t, user, keep):
    rows = np.flatnonzero(u == user)
    return set(rows[np.lexsort((i[rows], t[rows]))][:keep].tolist())


def test_newusers_split_keeps_each_new_users_first_ratings():
    rng = np.random.default_rng(3)
    u = rng.integers(0, 30, 600)
    i = rng.integers(0, 50, 600)
    t = rng.integers(0, 5, 600)  # many equal timestamps: the item id breaks ties
    s = newusers_split(u, i, t, fraction=0.2, keep=5)
    assert s.chosen.size == 6
    for user in np.unique(u):
        rows = set(np.flatnonzero(u == user).tolist())
        in_train = set(np.flatnonzero(s.train & (u == user)).tolist())
        expect = _first_by_time(u, i, t, user, 5) if user in s.chosen else rows
        assert in_train == expect
    assert not (s.train & s.test).any() and (s.train | s.test).all()


@needs_ml100k
def test_ml100k_protocol_splits_match_the_definition():
    """P3u: 189 users from default_rng(0).choice(sorted ids, 189); P3i: 135 items drawn
    from the items with >= 5 ratings, every one of their ratings in test."""
    u, i, _, t = read_ml100k_timestamps(ML100K)
    pu = newusers_split(u, i, t)
    ids = np.unique(u)
    assert pu.chosen.size == 189
    assert pu.chosen.tolist() == sorted(np.random.default_rng(0).choice(ids, 189, False))
    for user in pu.chosen[:20]:
        assert set(np.flatnonzero(pu.train & (u == user))) == _first_by_time(u, i, t, user, 5)
    assert set(u[pu.test]) <= set(pu.chosen)
    pi = newitems_split(u, i)
    assert pi.chosen.size == 135
    counts = dict(zip(*np.unique(i, return_counts=True), strict=True))
    assert all(counts[x] >= 5 for x in pi.chosen)
    assert set(np.flatnonzero(pi.test)) == set(np.flatnonzero(np.isin(i, pi.chosen)))
    assert sorted(pi.tiebreak.tolist()) == list(range(135))


def _items_info(item_ids):
    genres = ["Drama", "Comedy", "Action", "Horror"]
    return ItemInfo(
        item_ids=np.asarray(item_ids, dtype=np.int64),
        titles=[f"Film {k % 7} part" for k in item_ids],
        years=np.asarray([1980 + k % 20 for k in item_ids], dtype=float),
        genres=[[genres[k % 4], genres[(k // 4) % 4]] for k in item_ids],
        tags=[[] for _ in item_ids],
    )


@pytest.mark.parametrize(
    "tuner, extra",
    [
        ("ascent", {}),
        ("folds", {}),
        ("ascent", {"few_floor": None, "min_coverage": 0.3}),
        ("ascent", {"few_folds": 3, "few_als_reg": 50.0, "few_floor": None}),
    ],
)
def test_blend_weights_never_depend_on_the_test_split(monkeypatch, tuner, extra):
    """Evaluating with the real test ratings and with poisoned ones (every score
    flipped) fits the very same blend: the weights (and the few segment's coverage
    floor) come from train alone."""
    _, _, u, i, s = random_ratings(11, n_users=60, n_items=40, density=0.35)
    test = np.random.default_rng(0).random(u.size) < 0.2
    fitted = []
    real_fit = Blend.fit

    def spy(self, matrix, **kw):
        out = real_fit(self, matrix, **kw)
        fitted.append((self.weights_, self.few_floor_))
        return out

    monkeypatch.setattr(Blend, "fit", spy)
    side = evaluate.Side(items=_items_info(np.unique(i)))
    cfg = evaluate.ModelRanking(
        "small-blend",
        "as blend-topk, smaller",
        lambda t, side: Blend(
            ease_k=10, als_factors=4, als_iterations=3, rounds=1, tuner=tuner, **extra
        ).fit(t, items=side.items),
    )
    train = (u[~test], i[~test], s[~test])
    for scores in (s[test], 6.0 - s[test]):
        evaluate.run_ranking("t", train, (u[test], i[test], scores), np.unique(i), [cfg], side=side)
    assert len(fitted) == 2 and fitted[0] == fitted[1]
    assert set(fitted[0][0]) == {"many", "few", "cold"}


def test_blend_ranks_items_without_ratings_through_content():
    """An item nobody rated gets a score from the content part, and a cold-only
    candidate list is ranked by the cold weights."""
    _, _, u, i, s = random_ratings(12, n_users=60, n_items=40, density=0.35)
    cat = np.r_[np.unique(i), [9001, 9002]]
    m = RatingMatrix.from_arrays(u, i, s, items=cat)
    b = Blend(ease_k=10, als_factors=4, als_iterations=3).fit(m, items=_items_info(cat))
    cold = m.item_indices([9001, 9002])
    rows = m.csr[:5]
    mask = np.zeros(m.n_items, bool)
    mask[cold] = True
    scores = b.score(rows, candidates=mask)
    assert np.isfinite(scores[:, cold]).all() and np.ptp(scores[:, cold]) > 0


def test_items_csv_in_movielens_layout(tmp_path):
    p = tmp_path / "movies.csv"
    p.write_text(
        "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n"
        '2,"American President, The (1995)",Comedy|Drama\n3,No Year,(no genres listed)\n'
    )
    info = read_items_csv(p)
    assert info.item_ids.tolist() == [1, 2, 3]
    assert info.titles[1] == "American President, The" and info.years[0] == 1995
    assert info.genres == [["Adventure", "Animation"], ["Comedy", "Drama"], []]
    assert np.isnan(info.years[2])


def test_items_csv_without_genres_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "items.csv"
    bad.write_text("movieId,title\n1,A\n")
    with pytest.raises(ValueError, match="genres"):
        read_items_csv(bad)
    r = tmp_path / "r.csv"
    r.write_text("user,item,rating\n1,1,4\n")
    code = evaluate.main(["--train", str(r), "--test", str(r), "--items", str(bad)])
    assert code == 2 and "genres" in capsys.readouterr().err


def test_candidates_cold_ranks_only_items_absent_from_train(tmp_path, capsys, monkeypatch):
    _, _, u, i, s = random_ratings(13, n_users=50, n_items=30, density=0.4)
    cold_ids = np.unique(i)[:6]
    test = np.isin(i, cold_ids)
    for name, sel in (("train.csv", ~test), ("test.csv", test)):
        with open(tmp_path / name, "w") as fh:
            fh.write("user,item,rating\n")
            fh.writelines(f"{a},{b},{c}\n" for a, b, c in zip(u[sel], i[sel], s[sel], strict=True))
    with open(tmp_path / "movies.csv", "w") as fh:
        fh.write("movieId,title,genres\n")
        fh.writelines(f"{k},Film {k % 5} (199{k % 10}),G{k % 3}|H{k % 4}\n" for k in np.unique(i))
    seen = []
    real = evaluate.top_n

    def spy(scores, n, **kw):
        out = real(scores, n, **kw)
        seen.append(out)
        return out

    monkeypatch.setattr(evaluate, "top_n", spy)
    args = ["--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv")]
    args += ["--items", str(tmp_path / "movies.csv"), "--candidates", "cold", "--json"]
    assert evaluate.main([*args, "--config", "content", "--config", "random"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["config"] for r in rows] == ["content", "random"]
    assert all(set(r) == set(evaluate.KEYS) and r["ndcg@10"] is not None for r in rows)
    # every ranked item is one of the cold ones: indices of the 6 lowest ids = 0..5
    assert seen and all(set(t[t >= 0].tolist()) <= set(range(6)) for t in seen)


def test_blend_tunes_on_at_most_max_val_users_per_split(monkeypatch):
    """The validation blocks are dense (users x items): their user count is bounded."""
    _, _, u, i, s = random_ratings(14, n_users=80, n_items=30, density=0.4)
    m = RatingMatrix.from_arrays(u, i, s)
    sizes = []
    real = Blend._view

    def spy(self, *args):
        view = real(self, *args)
        sizes.append(len(view["relevant"]) if view else 0)
        return view

    monkeypatch.setattr(Blend, "_view", spy)
    Blend(als_factors=4, als_iterations=2, rounds=1, max_val_users=7).fit(m)
    assert sizes and max(sizes) == 7


def test_folds_tuner_picks_the_grid_combination_best_over_all_folds(monkeypatch):
    """The "folds" tuner carves ``folds`` validation splits from its train and keeps, per
    warm segment, the FOLD_GRID combination whose NDCG@10 pooled over every fold's users
    is highest (checked against scoring each combination by hand)."""
    _, _, u, i, s = random_ratings(21, n_users=70, n_items=30, density=0.4)
    m = RatingMatrix.from_arrays(u, i, s)
    grid = {"ease": (1.0,), "als": (0.0, 0.5, 2.0), "pop": (0.0, 1.0), "content": (0.0,)}
    monkeypatch.setattr(blend_module, "FOLD_GRID", grid)
    seen = []
    real = Blend._view

    def spy(self, *args):
        view = real(self, *args)
        seen.append(view)
        return view

    monkeypatch.setattr(Blend, "_view", spy)
    b = Blend(als_factors=4, als_iterations=3, tuner="folds", folds=3, few_users=0.3).fit(m)
    warm = seen[:6]  # per fold: many, then few
    for k, seg in enumerate(("many", "few")):
        views = [v for v in warm[k::2] if v is not None]
        assert len(views) == 3

        def pooled(w, views=views):
            hits = []
            for v in views:
                s = sum(w[n] * v["z"][n] for n in ("ease", "als", "pop"))
                top = top_n(s, 10, exclude=v["exclude"])
                ndcg = ranking_metrics(top, v["relevant"], v["n_items"])["ndcg@10"]
                hits.append((ndcg, len(v["relevant"])))
            return sum(a * n for a, n in hits) / sum(n for _, n in hits)

        combos = [{"ease": 1.0, "als": a, "pop": p} for a in grid["als"] for p in grid["pop"]]
        best = max(pooled(w) for w in combos)
        assert b.validation_[seg] == pytest.approx(best, abs=1e-6)
        assert pooled({n: b.weights_[seg][n] for n in ("ease", "als", "pop")}) == pytest.approx(
            best, abs=1e-6
        )


@pytest.mark.parametrize("tuner", ["ascent", "folds"])
def test_blend_without_validation_fits_its_parts_once(monkeypatch, tuner):
    """With nothing held out (the recompute between two tunings), the blend fits its
    components on the whole matrix only: no fit on an empty validation carve."""
    _, _, u, i, s = random_ratings(5, n_users=40, n_items=20, density=0.4)
    m = RatingMatrix.from_arrays(u, i, s)
    fits = []
    real = blend_module._Parts.__init__

    def spy(self, blend, matrix, *args):
        fits.append(matrix.csr.nnz)
        real(self, blend, matrix, *args)

    monkeypatch.setattr(blend_module._Parts, "__init__", spy)
    off = {"rounds": 0, "few_users": 0.0, "holdout": 0.0, "cold_folds": 0}
    Blend(als_factors=4, als_iterations=2, tuner=tuner, **off).fit(m)
    assert fits == [m.csr.nnz]


def test_folds_tuner_fits_the_components_once_per_fold_for_all_segments(monkeypatch):
    """Each fold's carve serves the many, few and cold segments at once: with item
    information the tuning costs ``folds`` fits plus the final one, and every fold's cold
    items lose all their ratings while the warm targets never include them."""
    _, _, u, i, s = random_ratings(8, n_users=80, n_items=60, density=0.4)
    m = RatingMatrix.from_arrays(u, i, s)
    fits, views = [], []
    real_init, real_view = blend_module._Parts.__init__, Blend._view

    def spy_init(self, blend, matrix, *args):
        fits.append(matrix)
        real_init(self, blend, matrix, *args)

    def spy_view(self, parts, u, i, r, held, names, candidates):
        views.append((parts.matrix, candidates, held))
        return real_view(self, parts, u, i, r, held, names, candidates)

    monkeypatch.setattr(blend_module._Parts, "__init__", spy_init)
    monkeypatch.setattr(Blend, "_view", spy_view)
    b = Blend(als_factors=4, als_iterations=2, tuner="folds", folds=2, cold_items=0.2)
    b.fit(m, items=_items_info(m.item_ids))
    assert len(fits) == 3 and fits[-1] is m
    cold = [(mat, c) for mat, c, _ in views if c is not None]
    assert len(cold) == 2 and not (cold[0][1] & cold[1][1]).any()
    for mat, c in cold:
        assert mat.item_counts[c].sum() == 0 and (m.item_counts[c] >= 5).all()
        warm = [h for x, cand, h in views if x is mat and cand is None]
        assert len(warm) == 2 and not any((h & c[m.csr.tocoo().col]).any() for h in warm)
    assert b.validation_["cold"] is not None


def test_folds_tuner_prefers_combinations_that_keep_min_coverage():
    """A popularity order can win NDCG for new users while showing everyone the same
    items; with ``min_coverage`` the tuner keeps the best combination whose top 10 cover
    at least that share of the items."""
    rng = np.random.default_rng(0)
    n_users, n_items = 12, 20
    pop = np.arange(n_items, dtype=float)  # the last item first for everyone
    view = {
        "z": {"ease": rng.normal(size=(n_users, n_items)), "pop": np.tile(pop, (n_users, 1))},
        "relevant": [np.array([n_items - 1])] * n_users,
        "exclude": None,
        "candidates": None,
        "n_items": n_items,
    }
    grid = {"ease": (0.0, 1.0), "pop": (0.0, 1.0)}
    free, _ = Blend(tuner="folds")._grid([view], grid)
    assert free == {"ease": 0.0, "pop": 1.0}  # covers 10 of 20 items
    kept, ndcg = Blend(tuner="folds", min_coverage=0.6)._grid([view], grid)
    assert kept["ease"] == 1.0 and ndcg < 1.0
    top = top_n(sum(kept[n] * view["z"][n] for n in grid), 10)
    assert np.unique(top).size >= 0.6 * n_items


def test_validation_z_scores_are_the_plain_formulas_numbers():
    """The memory-lean ``_standardise`` gives bit for bit the numbers of
    ``np.where(std > 0, (part - mean) / std, 0)`` with the statistics over the candidate
    columns, for contiguous and broadcast parts, constant rows, and a column subset."""
    rng = np.random.default_rng(4)
    part = rng.normal(size=(7, 30))
    part[2] = 3.0  # a constant row
    broadcast = np.broadcast_to(rng.normal(size=30), (7, 30))

    def plain(p, mask):
        sub = p[:, mask]
        mean, std = sub.mean(axis=1, keepdims=True), sub.std(axis=1, keepdims=True)
        return np.where(std > 0, (p - mean) / np.where(std > 0, std, 1.0), 0.0)

    some = rng.random(30) < 0.4
    for p in (part, broadcast, np.asfortranarray(part)):
        for mask in (np.ones(30, bool), some):
            expected = plain(p, mask)
            assert np.array_equal(blend_module._standardise(p, mask), expected)
            cols = np.flatnonzero(mask)
            got = blend_module._standardise(p, mask, cols)
            assert np.array_equal(got, expected[:, cols])


def test_a_view_of_its_candidate_columns_ranks_as_the_full_block():
    """A cold view keeps only its candidates' columns; its top 10, mapped back to item
    indices, is the full block's with the other items masked (ties by lower index)."""
    rng = np.random.default_rng(5)
    z = rng.integers(0, 4, size=(9, 50)).astype(float)  # many ties
    candidates = rng.random(50) < 0.5
    cols = np.flatnonzero(candidates)
    full = {"exclude": None, "candidates": candidates}
    kept = {"exclude": None, "candidates": candidates, "columns": cols}
    assert np.array_equal(blend_module._top10(z[:, cols], kept), blend_module._top10(z, full))
    few = np.zeros(50, bool)
    few[[3, 8]] = True  # fewer candidates than 10: -1 padded in both
    two = np.array([3, 8])
    got = blend_module._top10(z[:, two], {**kept, "candidates": few, "columns": two})
    assert np.array_equal(got, blend_module._top10(z, {**full, "candidates": few}))


def test_blend_with_given_weights_fits_its_parts_once_and_a_tuning_alone_fits_none(
    monkeypatch,
):
    """``fit(weights=)`` (a refit between tunings) fits the components once on the whole
    matrix and keeps the weights; ``fit(components=False)`` (the tuning on a sample) finds
    the same weights as a full fit without the final fit of the components."""
    _, _, u, i, s = random_ratings(5, n_users=40, n_items=20, density=0.4)
    m = RatingMatrix.from_arrays(u, i, s)
    info = _items_info(m.item_ids)
    params = {"als_factors": 4, "als_iterations": 2, "rounds": 1, "cold_folds": 1}
    full = Blend(**params).fit(m, items=info)
    fits = []
    real = blend_module._Parts.__init__

    def spy(self, blend, matrix, *args):
        fits.append(matrix)
        real(self, blend, matrix, *args)

    monkeypatch.setattr(blend_module._Parts, "__init__", spy)
    tuned = Blend(**params).fit(m, items=info, components=False)
    assert tuned.weights_ == full.weights_ and tuned.validation_ == full.validation_
    assert not hasattr(tuned, "parts_") and all(f is not m for f in fits)
    fits.clear()
    refit = Blend(**params).fit(m, items=info, weights=full.weights_)
    assert fits == [m] and refit.weights_ == full.weights_
    assert np.array_equal(refit.score(m.csr[:5]), full.score(m.csr[:5]))
