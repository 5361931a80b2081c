"""Content rows against a dense brute-force computation on small random catalogues."""

import numpy as np
import pytest

from recommendations.content_rows import (
    ContentModel,
    content_rows,
    offer,
    row_floors,
    select,
    vector_dot,
)
from recommendations.engine.data import ItemInfo

OPTIONS = {"k": 7, "new_k": 3, "new_min": 0.3}


def _catalogue(n: int, seed: int) -> tuple[ItemInfo, np.ndarray]:
    rng = np.random.default_rng(seed)
    genres = [f"G{i}" for i in range(6)]
    words = [f"word{i}" for i in range(25)]
    info = ItemInfo(
        item_ids=np.sort(rng.choice(10 * n, n, replace=False)) + 1,
        titles=[" ".join(rng.choice(words, rng.integers(1, 4))) for _ in range(n)],
        years=np.where(rng.random(n) < 0.1, np.nan, rng.integers(1950, 2020, n)),
        genres=[sorted(rng.choice(genres, rng.integers(0, 3), replace=False)) for _ in range(n)],
        tags=[[] for _ in range(n)],
    )
    popularity = rng.integers(0, 4, n) * (rng.random(n) < 0.6)
    return info, popularity


def _brute(model: ContentModel, row: int):
    f = model.features.toarray()
    scores = f @ f[row]
    scores[row] = 0.0
    return select(model.item_ids, scores, model.popularity, **OPTIONS)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rows_equal_the_dense_computation_in_any_shards(seed):
    """Each row is the top k by (score, popularity, id) plus the best unrated items above
    the threshold, whatever the shard boundaries."""
    info, popularity = _catalogue(120, seed)
    model = ContentModel.fit(info, popularity)
    whole, floors = content_rows(model, 0, model.n_items, **OPTIONS)
    parts = {}
    for start, stop in [(0, 37), (37, 38), (38, 120)]:
        parts.update(content_rows(model, start, stop, **OPTIONS)[0])
    assert len(whole) == model.n_items
    for r, item_id in enumerate(model.item_ids.tolist()):
        want = _brute(model, r)
        for got in (whole[item_id], parts[item_id]):
            assert got.ids.tolist() == want.ids.tolist(), (r, got, want)
            np.testing.assert_allclose(got.scores, want.scores, atol=1e-9)
            assert got.support.tolist() == want.support.tolist()
        np.testing.assert_allclose(floors[r], row_floors(want, **OPTIONS), atol=1e-9)


def test_a_row_keeps_unrated_items_that_rated_ones_outscore():
    """The "New" places: unrated items above the threshold stay in a row even when k
    rated items score higher."""
    ids = np.arange(1, 13)
    scores = np.array([0.9] * 8 + [0.5, 0.4, 0.2, 0.0])
    support = np.array([5] * 8 + [0, 0, 0, 0])
    row = select(ids, scores, support, **OPTIONS)
    assert row.ids.tolist() == [1, 2, 3, 4, 5, 6, 7, 9, 10]
    assert row_floors(row, **OPTIONS) == (0.9, 0.3)


def test_ties_go_to_the_more_popular_then_the_lower_id():
    row = select(np.array([5, 3, 4]), np.array([0.5, 0.5, 0.5]), np.array([1, 1, 2]), **OPTIONS)
    assert row.ids.tolist() == [4, 3, 5]


def test_a_vector_of_a_fitted_item_is_its_row_and_scores_are_cosines():
    info, popularity = _catalogue(60, 3)
    model = ContentModel.fit(info, popularity)
    for k in range(info.item_ids.size):
        vector = model.vector(info, k)
        (r,) = model.rows_of([info.item_ids[k]])
        dense = np.zeros(model.vocabulary.size)
        dense[vector["col"]] = vector["w"]
        np.testing.assert_allclose(dense, model.features[r].toarray().ravel(), atol=1e-6)
        np.testing.assert_allclose(
            model.scores(vector), model.features @ model.features[r].toarray().ravel(), atol=1e-6
        )
    a, b = model.vector(info, 0), model.vector(info, 1)
    (ra,), (rb,) = model.rows_of([info.item_ids[0]]), model.rows_of([info.item_ids[1]])
    expected = float(model.features[ra].multiply(model.features[rb]).sum())
    assert vector_dot(a, b) == pytest.approx(expected, abs=1e-6)


def test_the_stored_arrays_give_the_same_model():
    info, popularity = _catalogue(40, 4)
    model = ContentModel.fit(info, popularity)
    again = ContentModel.from_arrays(model.to_arrays())
    assert (again.features != model.features).nnz == 0
    assert again.vocabulary.tolist() == model.vocabulary.tolist()
    assert again.item_ids.tolist() == model.item_ids.tolist()


def test_offering_an_item_equals_selecting_over_all_candidates():
    """An item entering or rising: the row is what selecting over every candidate gives."""
    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        ids = rng.choice(1000, n, replace=False) + 1
        scores = rng.choice([0.0, 0.2, 0.35, 0.5, 0.9], n)
        support = rng.choice([0, 0, 1, 7], n)
        row = select(ids[:-1], scores[:-1], support[:-1], **OPTIONS)
        new = offer(row, int(ids[-1]), float(scores[-1]), int(support[-1]), **OPTIONS)
        want = select(ids, scores, support, **OPTIONS)
        got = row if new is None else new
        assert got.ids.tolist() == want.ids.tolist()
