"""The trend part (loved count decayed in time, as of each user's last rating) against a
brute-force sum, and the blend using it only when rating times are given."""

from __future__ import annotations

import numpy as np

from recommendations.engine.blend import Blend
from recommendations.engine.matrix import RatingMatrix
from recommendations.engine.trend import DAY, Trend

from .reference import random_ratings


def _brute(i, s, t, day, n_items, tau):
    """log(1 + sum over ratings made on or before ``day`` of max(r - 3, 0) decayed)."""
    out = np.zeros(n_items)
    for item, score, when in zip(i, s, t, strict=True):
        d = np.floor(when / DAY)
        if d <= day:
            out[item] += max(score - 3.0, 0.0) * np.exp(-(day - d) / tau)
    return np.log1p(out)


def _timed(seed):
    dense, mask, u, i, s = random_ratings(seed, n_users=30, n_items=12, density=0.5)
    m = RatingMatrix.from_arrays(u, i, s)
    t = np.random.default_rng(seed).uniform(0, 60 * DAY, size=u.size)
    times = RatingMatrix.from_arrays(u, i, t + 1.0).csr.data - 1.0  # aligned with m.csr
    return m, u, m.item_indices(i), s, t, times


def test_trend_equals_the_brute_force_sum_as_of_each_users_last_day():
    m, u, i, s, t, times = _timed(3)
    trend = Trend(tau=7.0).fit(m, times)
    got = trend.score(np.arange(m.n_users))
    for user in range(m.n_users):
        last = np.floor(t[u == m.user_ids[user]].max() / DAY)
        want = _brute(i, s, t, last, m.n_items, 7.0)
        np.testing.assert_allclose(got[user], want, rtol=1e-10, atol=1e-12)
    # an unknown user: as of the data's last day
    end = np.floor(t.max() / DAY)
    np.testing.assert_allclose(
        trend.score([-1])[0], _brute(i, s, t, end, m.n_items, 7.0), rtol=1e-10
    )


def test_trend_never_counts_ratings_after_the_users_day():
    m, u, i, s, t, times = _timed(4)
    first = int(np.argmin(t))  # the earliest rating's user, as of that day
    user = int(np.searchsorted(m.user_ids, u[first]))
    only = Trend(tau=1e9).fit(m, times)
    only.last_[user] = int(np.floor(t[first] / DAY))
    same_day = np.floor(t / DAY) == only.last_[user]
    counts = np.zeros(m.n_items)
    np.add.at(counts, i[same_day], np.maximum(s[same_day] - 3.0, 0.0))
    np.testing.assert_allclose(only.score([user])[0], np.log1p(counts), atol=1e-9)


def test_the_blend_fits_trend_only_with_times_and_a_tau():
    m, u, i, s, t, times = _timed(5)
    w = {"many": {"ease": 1.0}, "few": {"corated": 1.0, "trend": 1.0}, "cold": {"pop": 1.0}}
    on = Blend(trend_tau=30.0, ease_max_items=None).fit(m, timestamps=times, weights=w)
    assert on.parts_.trend is not None
    raw = on.parts_.components(m.csr[:3], m.user_ids[:3], ["trend"])["trend"]
    np.testing.assert_allclose(raw, on.parts_.trend.score([0, 1, 2]))
    assert Blend(trend_tau=30.0, ease_max_items=None).fit(m, weights=w).parts_.trend is None
    assert Blend(ease_max_items=None).fit(m, timestamps=times, weights=w).parts_.trend is None
