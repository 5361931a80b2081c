"""One behaviour suite over every similarity measure and both directions."""

from __future__ import annotations

import numpy as np
import pytest

from recommendations.engine import Baselines, RatingMatrix, compute_neighbours, concat_neighbours
from recommendations.engine.similarity import MEASURES

from .reference import dense_similarity, random_ratings, topk_from_dense

KINDS = ("item", "user")


def _setup(seed, **kw):
    dense, mask, uids, iids, scores = random_ratings(seed, **kw)
    m = RatingMatrix.from_arrays(uids, iids, scores)
    return m, dense, mask


def _resid(m, dense, mask):
    b = Baselines().fit(m)
    bui = b.predict(np.arange(m.n_users)[:, None], np.arange(m.n_items)[None, :])
    return b, np.where(mask, dense - bui, 0.0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize(
    ("seed", "shrinkage", "min_support", "k", "co_rated"),
    [(0, 0.0, 1, 5, False), (1, 100.0, 1, 8, False), (2, 10.0, 3, 4, True), (3, 0.0, 2, 50, True)],
)
def test_topk_equals_dense_brute_force(kind, measure, seed, shrinkage, min_support, k, co_rated):
    """Neighbour lists (indices, scores, support) equal a brute-force dense computation to
    1e-9, including shrinkage, min_support, padding and tie order."""
    m, dense, mask = _setup(seed)
    b, resid = _resid(m, dense, mask)
    nb = compute_neighbours(
        m,
        kind=kind,
        measure=measure,
        k=k,
        shrinkage=shrinkage,
        min_support=min_support,
        baselines=b,
        co_rated_norms=co_rated,
        dtype=np.float64,
    )
    ref, sup = dense_similarity(
        dense,
        mask,
        measure=measure,
        kind=kind,
        shrinkage=shrinkage,
        min_support=min_support,
        resid=resid,
        co_rated_norms=co_rated,
    )
    ref_idx, ref_sc = topk_from_dense(ref, k)
    # Ties in the reference are exact in float64 only up to rounding; compare scores first
    np.testing.assert_allclose(nb.scores, ref_sc, atol=1e-9, rtol=0, equal_nan=True)
    # then indices wherever the reference has no near-tie at that position
    rows_equal = nb.indices == ref_idx
    if not rows_equal.all():
        bad = np.argwhere(~rows_equal)
        for r, c in bad:
            a, bb = nb.indices[r, c], ref_idx[r, c]
            assert a >= 0 and bb >= 0 and abs(ref[r, a] - ref[r, bb]) < 1e-9, (r, c)
    valid = nb.indices >= 0
    assert np.array_equal(nb.support[valid], sup[np.nonzero(valid)[0], nb.indices[valid]])
    assert np.all(nb.support[~valid] == 0)
    assert nb.indices.dtype == np.int32 and nb.support.dtype == np.int32


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("measure", MEASURES)
def test_shards_concatenate_to_full_run(kind, measure):
    """Row-range shards, computed separately, concatenate to exactly the full result."""
    m, _, _ = _setup(7, n_users=40, n_items=33)
    full = compute_neighbours(m, kind=kind, measure=measure, k=6, shrinkage=5.0)
    n = full.n_rows
    cuts = [0, 1, n // 3, n // 2 + 1, n]
    parts = [
        compute_neighbours(m, kind=kind, measure=measure, k=6, shrinkage=5.0, rows=(a, b))
        for a, b in zip(cuts, cuts[1:], strict=False)
    ]
    assert [p.offset for p in parts] == cuts[:-1]
    joined = concat_neighbours(parts[::-1])
    assert joined.offset == 0
    assert np.array_equal(joined.indices, full.indices)
    assert np.array_equal(joined.scores, full.scores, equal_nan=True)
    assert np.array_equal(joined.support, full.support)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("measure", MEASURES)
def test_result_does_not_depend_on_thread_count(kind, measure):
    """One thread and all threads give bit-identical neighbour lists."""
    m, _, _ = _setup(11, n_users=50, n_items=40)
    a = compute_neighbours(m, kind=kind, measure=measure, k=7, n_threads=1)
    b = compute_neighbours(m, kind=kind, measure=measure, k=7)
    assert np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.scores, b.scores, equal_nan=True)


def _hand_matrix():
    # users u0..u2 (ids 10, 20, 30), items i0..i2 (ids 1, 2, 3)
    #        i0  i1  i2
    #   u0    5   3   .
    #   u1    4   .   2
    #   u2    1   1   5
    return RatingMatrix.from_arrays(
        [10, 10, 20, 20, 30, 30, 30], [1, 2, 1, 3, 1, 2, 3], [5, 3, 4, 2, 1, 1, 5]
    )


def test_hand_computed_item_cosine():
    """Item cosine over full vectors: cos(i0, i1) = (15 + 1) / (sqrt(42) * sqrt(10))."""
    m = _hand_matrix()
    nb = compute_neighbours(m, kind="item", measure="cosine", k=2, shrinkage=0, dtype=np.float64)
    idx, sc = nb.row(0)
    expect01 = 16 / np.sqrt(42 * 10)
    expect02 = (8 + 5) / np.sqrt(42 * 29)
    assert expect01 > expect02
    assert list(idx) == [1, 2]
    got = dict(zip(idx.tolist(), sc.tolist(), strict=True))
    assert got[1] == pytest.approx(expect01, abs=1e-12)
    assert got[2] == pytest.approx(expect02, abs=1e-12)
    assert list(nb.support[0]) == [2, 2]


def test_hand_computed_item_pearson_and_shrinkage():
    """Pearson(i0, i1) over co-raters u0, u2: x=(5,1), y=(3,1) -> 1.0; shrunk by 2/(2+2)."""
    m = _hand_matrix()
    nb = compute_neighbours(m, kind="item", measure="pearson", k=2, shrinkage=2.0, dtype=float)
    idx, sc = nb.row(0)
    got = dict(zip(idx.tolist(), sc.tolist(), strict=True))
    assert got[1] == pytest.approx(0.5, abs=1e-12)
    # i0 vs i2 over u1, u2: x=(4,1), y=(2,5) -> -1, shrunk to -0.5
    assert got[2] == pytest.approx(-0.5, abs=1e-12)


def test_hand_computed_user_adjusted_cosine():
    """User adjusted cosine centres on item means: i0 mean 10/3, i1 mean 2, i2 mean 3.5."""
    m = _hand_matrix()
    nb = compute_neighbours(
        m, kind="user", measure="adjusted_cosine", k=2, shrinkage=0, dtype=np.float64
    )
    u0 = np.array([5 - 10 / 3, 3 - 2, 0])
    u1 = np.array([4 - 10 / 3, 0, 2 - 3.5])
    expect = u0 @ u1 / np.linalg.norm(u0) / np.linalg.norm(u1)
    idx, sc = nb.row(0)
    got = dict(zip(idx.tolist(), sc.tolist(), strict=True))
    assert got[1] == pytest.approx(expect, abs=1e-12)


def test_min_support_excludes_pairs_with_few_coratings():
    """With min_support=3 no pair of the hand matrix (at most 2 co-ratings) is a neighbour."""
    m = _hand_matrix()
    for kind in KINDS:
        nb = compute_neighbours(m, kind=kind, measure="cosine", k=3, min_support=3)
        assert np.all(nb.indices == -1)
        assert np.all(np.isnan(nb.scores))
        assert np.all(nb.support == 0)


def test_ties_break_by_lower_index():
    """Identical items are neighbours with equal scores, listed by ascending index."""
    m = RatingMatrix.from_arrays(
        [1, 1, 1, 1, 2, 2, 2, 2], [5, 6, 7, 8] * 2, [4, 4, 4, 4, 2, 2, 2, 2]
    )
    nb = compute_neighbours(m, kind="item", measure="cosine", k=2, shrinkage=0)
    assert nb.indices.tolist() == [[1, 2], [0, 2], [0, 1], [0, 1]]
    assert np.allclose(nb.scores, 1.0)


def test_rows_never_list_themselves_and_scores_are_sorted():
    """No row is its own neighbour and scores never increase along a row."""
    m, _, _ = _setup(5, n_users=60, n_items=45, density=0.4)
    for kind in KINDS:
        for measure in MEASURES:
            nb = compute_neighbours(m, kind=kind, measure=measure, k=10)
            rows = np.arange(nb.n_rows)[:, None]
            assert not np.any(nb.indices == rows)
            s = np.where(np.isnan(nb.scores), -np.inf, nb.scores)
            assert np.all(np.diff(s, axis=1) <= 0)


def test_bad_arguments_are_rejected():
    m = _hand_matrix()
    with pytest.raises(ValueError):
        compute_neighbours(m, kind="items")
    with pytest.raises(ValueError):
        compute_neighbours(m, measure="msd")
    with pytest.raises(ValueError):
        compute_neighbours(m, rows=(2, 5))


def test_to_csr_keeps_positive_scores():
    """to_csr gives a rows x rows sparse matrix with the positive scores only."""
    m = _hand_matrix()
    nb = compute_neighbours(m, kind="item", measure="pearson", k=2, shrinkage=0)
    s = nb.to_csr(m.n_items)
    assert s.shape == (3, 3)
    assert np.all(s.data > 0)
    assert s[0, 1] == pytest.approx(1.0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("measure", MEASURES)
def test_cache_blocking_does_not_change_results(kind, measure, monkeypatch):
    """Full runs split dense rows into column blocks; tiny blocks give identical lists."""
    from recommendations.engine import similarity

    m, _, _ = _setup(12, n_users=70, n_items=50, density=0.5)
    ref = compute_neighbours(m, kind=kind, measure=measure, k=9, shrinkage=3.0)
    monkeypatch.setattr(similarity, "_block_cols", lambda mode: 7)
    got = compute_neighbours(m, kind=kind, measure=measure, k=9, shrinkage=3.0)
    assert np.array_equal(got.indices, ref.indices)
    assert np.array_equal(got.scores, ref.scores, equal_nan=True)
    assert np.array_equal(got.support, ref.support)


def test_csc_permutation_matches_a_stable_sort():
    """The csr -> csc entry map equals a stable argsort of the column indices, including
    for an entry whose value is 0."""
    from recommendations.engine.similarity import _csc_permutation

    dense, mask, u, i, s = random_ratings(13, n_users=30, n_items=20)
    s = s.copy()
    s[0] = 0.0
    m = RatingMatrix.from_arrays(u, i, s)
    perm = _csc_permutation(m)
    assert np.array_equal(perm, np.argsort(m.csr.indices, kind="stable"))
    assert np.array_equal(m.csr.data[perm], m.csc.data)


def _with_twins(seed):
    """Random ratings where some users and some items are exact copies of others, so
    many pairs tie and the tie order (lower index first) is exercised."""
    dense, mask, _, _, _ = random_ratings(seed, n_users=36, n_items=28, density=0.35)
    dense = np.vstack([dense, dense[:6]])
    dense = np.hstack([dense, dense[:, :5]])
    u, i = np.nonzero(dense)
    return RatingMatrix.from_arrays(u * 7 + 1000, i * 3 + 5, dense[u, i])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("shards", [1, 2, 3, 7])
def test_symmetric_shards_merge_to_exactly_the_full_run(kind, measure, shards):
    """The sharded symmetric pass (each pair computed once, by the shard of its lower row;
    partial lists merged afterwards, in row ranges unrelated to the shards) gives exactly
    compute_neighbours over all rows: indices, float64 scores bit for bit, support, and
    the order of ties."""
    from recommendations.engine.similarity import (
        compute_neighbour_pairs,
        merge_neighbours,
        pair_ranges,
        pair_work,
    )

    m = _with_twins(21)
    options = {"kind": kind, "measure": measure, "k": 6, "shrinkage": 4.0, "min_support": 2}
    full = compute_neighbours(m, dtype=np.float64, **options)
    ranges = pair_ranges(pair_work(m, kind=kind), shards)
    assert len(ranges) == shards
    parts = [compute_neighbour_pairs(m, rows=r, **options) for r in ranges]
    n = full.n_rows
    cuts = [0, 1, n // 3, n]
    merged = concat_neighbours(
        [
            merge_neighbours(parts[::-1], rows=(a, b), k=6, dtype=np.float64)
            for a, b in zip(cuts, cuts[1:], strict=False)
        ]
    )
    assert np.array_equal(merged.indices, full.indices)
    assert np.array_equal(merged.scores, full.scores, equal_nan=True)
    assert np.array_equal(merged.support, full.support)
    tied = (np.diff(full.scores, axis=1) == 0).sum()
    assert tied > 0  # the twins do tie
    float32 = merge_neighbours(parts, rows=(0, n), k=6)
    assert float32.scores.dtype == np.float32
    assert np.array_equal(float32.indices, full.indices)


def test_a_shard_of_the_symmetric_pass_lists_only_rows_from_its_start():
    """A shard's partial lists cover its first row to the last (earlier rows meet none of
    its pairs), with each row's best among the pairs the shard computed."""
    from recommendations.engine.similarity import compute_neighbour_pairs

    m, _, _ = _setup(4, n_users=40, n_items=30, density=0.4)
    part = compute_neighbour_pairs(m, kind="user", measure="cosine", k=5, rows=(10, 20))
    assert (part.offset, part.n_rows) == (10, 30)
    assert part.scores.dtype == np.float64
    # rows after the range only list rows of the range (their pairs with later rows
    # belong to later shards)
    later = part.indices[20 - 10 :]
    assert np.all((later == -1) | ((later >= 10) & (later < 20)))


def test_pair_work_counts_each_later_rows_shared_features():
    """pair_work(i) = sum over j > i of the features i and j share, plus n - 1 - i for a row
    the kernel finalises by a scan (visits reaching a quarter of the rows)."""
    from recommendations.engine.similarity import pair_work

    m, dense, mask = _setup(6, n_users=30, n_items=22, density=0.3)
    for kind, rows in (("user", mask), ("item", mask.T)):
        co = rows.astype(int) @ rows.T.astype(int)
        n = co.shape[0]
        visits = np.array([co[i, i + 1 :].sum() for i in range(n)], dtype=float)
        scans = np.where(visits * 4 >= n, n - 1 - np.arange(n), 0)
        assert np.array_equal(pair_work(m, kind=kind), visits + scans)


def test_pair_ranges_split_the_work_evenly_without_empty_ranges():
    from recommendations.engine.similarity import pair_ranges

    work = np.array([50.0, 40, 30, 20, 10, 5, 5, 5, 5, 0, 0, 0])
    ranges = pair_ranges(work, 3)
    assert ranges[0][0] == 0 and ranges[-1][1] == work.size
    assert all(a < b for a, b in ranges)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    shares = [work[a:b].sum() for a, b in ranges]
    assert max(shares) <= work.sum() / 3 + work.max()
    assert ranges[0][1] - ranges[0][0] < ranges[-1][1] - ranges[-1][0]  # early rows cost more
    many = pair_ranges(work, 50)  # more shards than rows: at most one a row, none empty
    assert many[0][0] == 0 and many[-1][1] == work.size and all(a < b for a, b in many)
    assert pair_ranges(np.zeros(0), 4) == [(0, 0)]


def test_merging_refuses_float32_partial_lists():
    """Rounded scores could order ties differently from one run: merging needs float64."""
    from recommendations.engine.similarity import merge_neighbours

    m = _hand_matrix()
    nb = compute_neighbours(m, kind="item", k=2)
    with pytest.raises(ValueError, match="float64"):
        merge_neighbours([nb], rows=(0, 3), k=2)
