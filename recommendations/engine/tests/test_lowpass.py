"""The ideal low-pass part against a dense SVD written out, and the blend fitting it only
when asked."""

from __future__ import annotations

import numpy as np

from recommendations.engine.blend import PRODUCT_BLEND, Blend
from recommendations.engine.lowpass import LowPass
from recommendations.engine.matrix import RatingMatrix

from .reference import random_ratings


def _reference(dense, k, rows):
    """GF-CF's ideal filter from its definition, dense: ``r D_i^-1/2 V V^T D_i^1/2``."""
    du, di = dense.sum(axis=1), dense.sum(axis=0)
    su = np.where(du > 0, 1 / np.sqrt(np.where(du > 0, du, 1)), 0.0)
    si = np.where(di > 0, 1 / np.sqrt(np.where(di > 0, di, 1)), 0.0)
    norm = su[:, None] * dense * si[None, :]
    _, sv, vt = np.linalg.svd(norm)
    v = vt[:k].T
    assert sv[k - 1] - sv[k] > 1e-6  # a gap: the filter (V V^T) is unique
    return (rows * si[None, :]) @ v @ v.T * np.sqrt(di)[None, :]


def test_lowpass_equals_the_dense_filter_from_its_definition():
    for seed, k in ((1, 3), (2, 6), (3, 10)):
        dense, mask, u, i, s = random_ratings(seed, n_users=40, n_items=20, density=0.35)
        m = RatingMatrix.from_arrays(u, i, s)
        # the matrix's own item order (ids sorted: the same order as the dense columns)
        d = m.csr.toarray()
        got = LowPass(k=k).fit(m).score(m.csr)
        want = _reference(d, k, d)
        np.testing.assert_allclose(got, want, atol=1e-9)
        # a live row (a fold-in): one more rating changes the scores as the formula says
        row = d[:1].copy()
        row[0, np.flatnonzero(row[0] == 0)[0]] = 5.0
        live = LowPass(k=k).fit(m).score(m.csr[:1].__class__(row))
        np.testing.assert_allclose(live, _reference(d, k, row), atol=1e-9)
        assert not np.allclose(live, got[:1])


def test_lowpass_scores_items_without_ratings_zero_and_repeats():
    dense, mask, u, i, s = random_ratings(4, n_users=30, n_items=15, density=0.4)
    m = RatingMatrix.from_arrays(u, i, s, items=np.append(np.unique(i), [9999]))
    a = LowPass(k=4).fit(m).score(m.csr)
    b = LowPass(k=4).fit(m).score(m.csr)
    assert m.item_counts[-1] == 0
    np.testing.assert_array_equal(a[:, -1], 0.0)
    np.testing.assert_allclose(a, b, atol=1e-12)  # the start vector is fixed


def test_the_blend_fits_the_lowpass_only_when_asked_and_the_ascent_may_weigh_it():
    dense, mask, u, i, s = random_ratings(5, n_users=40, n_items=20, density=0.4)
    m = RatingMatrix.from_arrays(u, i, s)
    w = {"many": {"ease": 1.0, "lowpass": 0.5}, "few": {"pop": 1.0}, "cold": {}}
    on = Blend(lowpass_k=4, ease_max_items=None).fit(m, weights=w)
    raw = on.parts_.components(m.csr[:3], m.user_ids[:3], ["lowpass"])
    np.testing.assert_allclose(raw["lowpass"], LowPass(k=4).fit(m).score(m.csr[:3]))
    assert Blend(ease_max_items=None).fit(m, weights=w).parts_.lowpass is None
    small = PRODUCT_BLEND | {"ease_max_items": None, "ease_keep": 0, "als_iterations": 2}
    assert "lowpass" not in Blend(**small).fit(m).weights_["many"]
    tuned = Blend(**small | {"lowpass_k": 4}).fit(m)
    assert "lowpass" in tuned.weights_["many"] and "lowpass" not in tuned.weights_["few"]
