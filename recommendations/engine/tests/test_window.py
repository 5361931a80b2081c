"""The activity-window part (each item's ratings inside the user's active span) against
a brute-force count, and the blend fitting it and the centred EASE only when asked."""

from __future__ import annotations

import numpy as np

from recommendations.engine.blend import PRODUCT_BLEND, Blend
from recommendations.engine.matrix import RatingMatrix
from recommendations.engine.window import DAY, Window

from .reference import random_ratings


def _timed(seed):
    _, _, u, i, s = random_ratings(seed, n_users=30, n_items=12, density=0.5)
    m = RatingMatrix.from_arrays(u, i, s)
    # whole days, so windows' edges fall on ratings (the <= at both ends is tested)
    t = np.random.default_rng(seed).integers(0, 60, size=u.size) * DAY
    times = RatingMatrix.from_arrays(u, i, t + 1.0).csr.data - 1.0  # aligned with m.csr
    return m, u, m.item_indices(i), s, t, times


def _brute(i, t, lo, hi, n_items):
    out = np.zeros(n_items)
    for item, when in zip(i, t, strict=True):
        if lo <= when <= hi:
            out[item] += 1
    return np.log1p(out)


def test_window_counts_each_items_ratings_in_the_users_span_widened_by_the_days():
    m, u, i, s, t, times = _timed(3)
    w = Window(before=5.0, after=2.0).fit(m, times)
    got = w.score(np.arange(m.n_users))
    assert got.shape == (m.n_users, m.n_items)
    for user in range(m.n_users):
        mine = t[u == m.user_ids[user]]
        lo, hi = mine.min() - 5 * DAY, mine.max() + 2 * DAY
        np.testing.assert_allclose(got[user], _brute(i, t, lo, hi, m.n_items), atol=1e-12)
    # an unknown user: the data's last 7 days
    end = t.max()
    np.testing.assert_allclose(
        w.score([-1])[0], _brute(i, t, end - 7 * DAY, end, m.n_items), atol=1e-12
    )


def test_window_is_not_the_all_time_count():
    m, u, i, s, t, times = _timed(4)
    got = Window(before=0.0).fit(m, times).score(np.arange(m.n_users))
    every = np.log1p(m.item_counts.astype(float))
    assert (got <= every + 1e-12).all()
    assert (got < every - 1e-9).any()


def test_the_blend_fits_the_window_and_centred_ease_only_when_asked():
    m, u, i, s, t, times = _timed(5)
    w = {"many": {"ease": 1.0, "ease_c": 0.5, "window": 1.0}, "few": {"pop": 1.0}, "cold": {}}
    on = Blend(window_before=3.0, ease_c_lam=10.0, ease_max_items=None).fit(
        m, timestamps=times, weights=w
    )
    assert on.parts_.ease_c.weighting == "centred"
    raw = on.parts_.components(m.csr[:3], m.user_ids[:3], ["window", "ease_c"])
    np.testing.assert_allclose(raw["window"], on.parts_.window.score([0, 1, 2]))
    np.testing.assert_allclose(raw["ease_c"], on.parts_.ease_c.score(m.csr[:3]))
    off = Blend(ease_max_items=None).fit(m, timestamps=times, weights=w).parts_
    assert off.window is None and off.ease_c is None
    # no times: no window, however asked
    assert Blend(window_before=3.0, ease_max_items=None).fit(m, weights=w).parts_.window is None


def test_without_the_new_parts_the_product_blend_tunes_as_before():
    """The many segment's ascent only visits parts that exist: with ease_c and window off
    (the product), the tuned weights carry neither; with ease_c on, it is tuned."""
    m, u, i, s, t, times = _timed(6)
    small = PRODUCT_BLEND | {"ease_max_items": None, "ease_keep": 0, "als_iterations": 2}
    product = Blend(**small).fit(m, timestamps=times)
    assert "ease_c" not in product.weights_["many"] and "window" not in product.weights_["many"]
    both = Blend(**small | {"ease_c_lam": 10.0, "window_before": 3.0}).fit(m, timestamps=times)
    assert {"ease_c", "window"} <= set(both.weights_["many"])
    assert "ease_c" not in both.weights_["few"]
