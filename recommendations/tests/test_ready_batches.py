"""The stored-lists stage scores users a block at a time (``model_scoring.score_block``)
with exactly the numbers the per-user scoring of the live path gives, so a stored list
equals the live one across block boundaries, for users with hidden items too."""

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from catalog import services as catalog_services
from catalog.models import Item
from recommendations import build, model_scoring, pipeline, reads, store
from recommendations.tests.test_model_lists import _small, shown


def _parts(seed=0):
    matrix, info, arrays = _small(seed)
    active = np.r_[matrix.item_ids, matrix.item_ids.max() + 1]  # and one unrated, unseen
    parts = model_scoring.ModelParts(model_scoring.fit_parts(arrays, info=info, active_ids=active))
    return matrix, parts


@pytest.mark.parametrize("seed", [0, 1])
def test_a_block_scores_each_user_exactly_as_one_user_is_scored(seed):
    """Same float64 scores bit for bit, and the same rows (what reasons are made from);
    a user without ratings in the block (whom the live path never scores) does no harm."""
    matrix, parts = _parts(seed)
    csr = matrix.csr.copy()
    csr.data[csr.indptr[3] : csr.indptr[4]] = 0  # user 3: no ratings
    csr.eliminate_zeros()
    block = model_scoring.score_block(parts, model_scoring.block_rows(parts, csr, matrix.item_ids))
    assert len(block) == matrix.n_users
    for u, got in enumerate(block):
        row = csr[u]
        if not row.nnz:
            assert np.isfinite(got.scores).all()
            continue
        one = parts.score(matrix.item_ids[row.indices], row.data)
        assert np.array_equal(got.scores, one.scores), u
        assert got.row.indices.tolist() == one.row.indices.tolist()
        assert np.array_equal(got.row.data, one.row.data)


@pytest.mark.parametrize("floor", [0, 2])
def test_components_weighted_zero_are_not_computed_and_the_scores_stay_the_same(floor):
    """A part no weight uses (here ALS mapped from content everywhere, co-occurrence
    beyond the few segment) is skipped, by the block and by one user alike; a few-segment
    user under the coverage floor still gets the many segment's parts."""
    matrix, parts = _parts(2)
    parts.config["few_floor"] = floor
    parts.config["weights"]["many"]["als_content"] = 0.0
    parts.config["weights"]["few"]["als_content"] = 0.0
    csr = matrix.csr
    block = model_scoring.score_block(parts, model_scoring.block_rows(parts, csr, matrix.item_ids))
    for u in range(matrix.n_users):
        row = parts.user_row(matrix.item_ids[csr[u].indices], csr[u].data)
        used = parts.used(row.nnz)
        assert "als_content" not in used
        many = {name for name, w in parts.config["weights"]["many"].items() if w}
        if floor and 0 < row.nnz <= parts.config["few_max"]:
            assert many <= used
        all_parts = parts.components(row)
        expected = np.zeros(parts.n_items)
        for name, w in parts.weights_for(row.nnz).items():
            if w and name in all_parts:
                expected += w * model_scoring._standardise(all_parts[name])
        expected = parts.floor(row, expected, all_parts)
        one = parts.score(matrix.item_ids[csr[u].indices], csr[u].data)
        assert np.array_equal(one.scores, expected), u
        assert np.array_equal(block[u].scores, expected), u


def test_block_rows_drop_items_the_model_has_no_column_for():
    matrix, parts = _parts()
    ids = matrix.item_ids.copy()
    ids[0] = 10**9  # an item added after the fit
    rows = model_scoring.block_rows(parts, matrix.csr, ids)
    for u in range(matrix.n_users):
        row = matrix.csr[u]
        one = parts.user_row(ids[row.indices], row.data)
        assert rows[u].indices.tolist() == one.indices.tolist()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_top_items_are_explained_at_once_as_one_by_one(seed):
    """``explain_top`` gives each top item the reasons and code ``UserScores.explain``
    gives, for warm and unrated items, with and without liked items."""
    matrix, parts = _parts(seed)
    for u in range(matrix.n_users):
        row = matrix.csr[u]
        scored = parts.score(matrix.item_ids[row.indices], row.data)
        top = np.argsort(-scored.scores, kind="stable")[:12]
        top = np.r_[top, np.flatnonzero(~parts.warm)]  # the unrated columns too
        groups, codes = scored.explain(top, 3)
        because, got = model_scoring.explain_top(scored, top, 3)
        assert got.tolist() == codes.tolist()
        assert [b[b >= 0].tolist() for b in because] == [g.tolist() for g in groups]


@pytest.fixture
def model_from_one_rating(settings):
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "MODEL_MIN_RATINGS": 1}


@pytest.mark.django_db
def test_stored_lists_over_block_boundaries_and_hidden_items_equal_the_live_ones(
    rec_redis, demo_catalogue, model_from_one_rating, monkeypatch
):
    """Blocks of 7 users: every block boundary falls between two users the stage scores;
    a few users hid items they would have been shown."""
    monkeypatch.setattr(build, "READY_BLOCK_USERS", 7)
    users = list(get_user_model().objects.filter(ratings__isnull=False).distinct().order_by("pk"))
    assert len(users) > 20
    pipeline.recompute_sync()
    hid = {}
    for user in users[5:40:6]:  # users on and beside block boundaries
        first = reads.recommendations_for_user(user=user, limit=3).suggestions[0].item
        catalog_services.item_hide(user=user, item=Item.objects.get(pk=first.pk))
        hid[user.pk] = first.pk
    run = pipeline.recompute_sync()
    assert run.status == run.Status.SUCCEEDED, run.error
    model = store.live_model()
    assert model.meta["n_ready_lists"] == len(users)
    for user in users:
        stored = reads._from_ready_list(model, user.pk, 30, True)
        live = reads._personal(user=user, limit=30, genre="", user_weight=1.0, explain=True)
        assert stored is not None and shown(stored) == shown(live), user
        if user.pk in hid:
            assert hid[user.pk] not in [s.item.pk for s in stored.suggestions]


@pytest.mark.django_db
def test_the_block_size_does_not_change_a_single_stored_byte(
    rec_redis, demo_catalogue, model_from_one_rating
):
    run = pipeline.recompute_sync()
    assert run.status == run.Status.SUCCEEDED, run.error
    model = store.live_model()
    arrays = build.snapshot_arrays(build.snapshot_ratings(), build.snapshot_list_context())
    inputs = build.ModelInputs.from_snapshot(arrays)
    lists = build.ListInputs.load(model.version, inputs, arrays)
    parts = model_scoring.parts_for(model.version)
    n = inputs.matrix.n_users
    one_by_one = {}
    for u in range(n):
        one_by_one.update(build.compute_ready(inputs, lists, u, u + 1, model=parts, batch=1))
    for batch in (3, 64, None):
        assert build.compute_ready(inputs, lists, 0, n, model=parts, batch=batch) == one_by_one


def test_item_ids_map_to_the_columns_a_search_of_the_sorted_ids_gives():
    """``ModelParts.columns`` (a table indexed by id) answers what ``_index_of`` (a binary
    search) answers: for int32 and int64 ids, unknown ids between and beyond the columns,
    negative ids, an empty array and a plain list; and a catalogue whose ids are too
    sparse for a table still maps by searching."""
    from recommendations.engine.matrix import _index_of

    _, parts = _parts()
    known = np.asarray(parts.item_ids, dtype=np.int64)
    gaps = np.setdiff1d(np.arange(known.max() + 3), known)[:5]
    ids = np.r_[known[::-1], gaps, known.max() + 1, 10**9, -1, 0]
    expected = _index_of(parts.item_ids, ids)
    assert (expected == -1).sum() >= 4 and (expected >= 0).sum() == known.size
    for array in (ids, ids.astype(np.int32), ids.tolist()):
        got = parts.columns(array)
        assert got.dtype == np.int64 and got.tolist() == expected.tolist()
    inside = known[::-1].astype(np.int32)  # every id in the table: the direct lookup
    assert parts.columns(inside).tolist() == _index_of(parts.item_ids, inside).tolist()
    assert parts.columns(np.empty(0, np.int32)).size == 0 and parts.columns([]).size == 0
    sparse = model_scoring.ModelParts.__new__(model_scoring.ModelParts)
    sparse.item_ids = np.array([3, 2**40], dtype=np.int64)
    assert sparse.column_table is None
    assert sparse.columns(np.array([2**40, 3, 4])).tolist() == [1, 0, -1]


def test_a_first_reads_evidence_sums_what_the_columns_and_bincount_sum_bit_for_bit():
    """``ranking.stored_evidence`` (the compiled pass over the column table) gives the
    float64 counts and sums ``neighbour_evidence`` gives from the mapped columns, with
    ids the model has no column for and ratings whose order changes the rounding."""
    from recommendations import ranking

    _, parts = _parts()
    rng = np.random.default_rng(3)
    ids = np.r_[parts.item_ids, parts.item_ids.max() + 7, 10**9]
    items = rng.choice(ids, 5000).astype(np.int32)
    ratings = rng.choice([0.5, 1.0, 2.5, 3.5, 4.0, 4.5, 5.0], 5000).astype(np.float32)
    ratings[::3] = rng.random(ratings[::3].size).astype(np.float32) * 5  # inexact sums
    rows = np.empty(items.size, dtype=store.RATING_DTYPE)
    rows["item"], rows["score"] = items, ratings
    counts, sums = ranking.stored_evidence(parts, rows["item"], rows["score"])
    expected = ranking.neighbour_evidence(parts.columns(items), ratings, parts.n_items)
    assert counts.sum() < items.size  # some ids had no column
    assert np.array_equal(counts, expected[0]) and np.array_equal(sums, expected[1])
    empty = ranking.stored_evidence(parts, rows["item"][:0], rows["score"][:0])
    assert not empty[0].any() and empty[1].shape == (parts.n_items,)
