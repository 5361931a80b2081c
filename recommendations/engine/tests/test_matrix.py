"""RatingMatrix id maps, statistics and Baselines."""

from __future__ import annotations

import numpy as np
import pytest

from recommendations.engine import Baselines, RatingMatrix

from .reference import random_ratings


def test_ids_map_to_indices_and_back():
    """External ids are sorted into index maps; lookups invert them; unknown ids are None/-1."""
    m = RatingMatrix.from_arrays([30, 10, 30], [7, 7, 2], [1.0, 2.0, 3.0])
    assert m.user_ids.tolist() == [10, 30]
    assert m.item_ids.tolist() == [2, 7]
    assert m.user_index(30) == 1 and m.item_index(2) == 0
    assert m.user_index(99) is None and m.item_index(3) is None
    assert m.user_indices([10, 99, 30]).tolist() == [0, -1, 1]
    assert m.item_indices([7, 1]).tolist() == [1, -1]
    assert m.csr.toarray().tolist() == [[0, 2], [3, 1]]
    assert m.csr.dtype == np.float64


def test_last_duplicate_wins_and_extra_ids_get_empty_rows():
    """A repeated (user, item) keeps the last score; listed users/items without ratings
    still get a row/column."""
    m = RatingMatrix.from_arrays([1, 1, 1], [5, 5, 6], [1, 4, 2], users=[9], items=[8])
    assert m.shape == (2, 3)
    assert m.nnz == 2
    assert m.csr.toarray().tolist() == [[4, 2, 0], [0, 0, 0]]
    assert m.user_counts.tolist() == [2, 0]
    assert m.item_counts.tolist() == [1, 1, 0]


def test_means_and_counts_match_dense():
    """User/item means and counts equal dense computations; empty rows get the global mean."""
    dense, mask, u, i, s = random_ratings(3, n_users=20, n_items=15, density=0.2)
    m = RatingMatrix.from_arrays(u, i, s, users=[10**9])
    g = dense[mask].mean()
    assert m.global_mean == pytest.approx(g)
    cnt_u = mask.sum(1)
    mean_u = np.where(cnt_u > 0, dense.sum(1) / np.maximum(cnt_u, 1), g)
    np.testing.assert_allclose(m.user_means[:-1], mean_u[cnt_u > 0])
    assert m.user_means[-1] == pytest.approx(g)
    cnt_i = mask.sum(0)
    np.testing.assert_allclose(m.item_counts, cnt_i[cnt_i > 0])
    mean_i = dense.sum(0)[cnt_i > 0] / cnt_i[cnt_i > 0]
    np.testing.assert_allclose(m.item_means, mean_i)


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError):
        RatingMatrix.from_arrays([1, 2], [1], [3.0, 4.0])


def test_als_baselines_match_a_loop_implementation():
    """ALS biases equal the item-then-user closed-form updates done with plain loops."""
    dense, mask, u, i, s = random_ratings(4, n_users=25, n_items=18)
    m = RatingMatrix.from_arrays(u, i, s)
    b = Baselines(n_epochs=3, reg_user=2.0, reg_item=5.0).fit(m)
    mu = dense[mask].mean()
    bu = np.zeros(m.n_users)
    bi = np.zeros(m.n_items)
    for _ in range(3):
        for j in range(m.n_items):
            rs = [dense[x, j] - mu - bu[x] for x in range(m.n_users) if mask[x, j]]
            bi[j] = sum(rs) / (5.0 + len(rs))
        for x in range(m.n_users):
            rs = [dense[x, j] - mu - bi[j] for j in range(m.n_items) if mask[x, j]]
            bu[x] = sum(rs) / (2.0 + len(rs))
    np.testing.assert_allclose(b.user_bias_, bu, atol=1e-12)
    np.testing.assert_allclose(b.item_bias_, bi, atol=1e-12)
    assert b.predict([-1], [-1])[0] == pytest.approx(mu)
    assert b.predict([0], [-1])[0] == pytest.approx(mu + bu[0])


def test_sgd_baselines_reduce_training_error():
    """SGD biases fit the training ratings better than the global mean alone."""
    dense, mask, u, i, s = random_ratings(6, n_users=40, n_items=30)
    m = RatingMatrix.from_arrays(u, i, s)
    b = Baselines(method="sgd", n_epochs=30).fit(m)
    resid = b.residuals(m)
    assert np.mean(resid**2) < np.mean((m.csr.data - m.global_mean) ** 2)
    assert b.fit(m) is b
