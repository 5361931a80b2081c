"""Synthetic ratings with a MovieLens-like shape, for benchmarks.

Shape: every user has at least ``min_per_user`` ratings and activity is long-tailed
(log-normal above the minimum); item popularity is Zipf-like (``p ~ 1 / (rank + offset)``,
ranks shuffled over item ids); ratings come from a low-rank model plus user and item
biases plus noise, rounded to 1..5. Deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SIZES", "generate"]

# name -> (ratings, users, items); 25M mirrors MovieLens 25M (162k users, 59k items)
SIZES = {
    "1M": (1_000_000, 6_000, 4_000),
    "10M": (10_000_000, 70_000, 10_000),
    "25M": (25_000_000, 160_000, 60_000),
}


def generate(
    n_ratings: int,
    n_users: int,
    n_items: int,
    *,
    seed: int = 0,
    min_per_user: int = 20,
    activity_sigma: float = 1.1,
    zipf_exponent: float = 1.0,
    zipf_offset: float = 30.0,
    rank: int = 8,
    noise: float = 0.8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user int32, item int32, rating float32) arrays, about ``n_ratings`` long.

    A few heavy users can end slightly short of their drawn activity (sampling without
    replacement from a skewed distribution), so the count is within a fraction of a
    percent of ``n_ratings``.
    """
    rng = np.random.default_rng(seed)
    if n_ratings < n_users * min_per_user:
        raise ValueError("n_ratings must allow min_per_user ratings per user")
    # long-tailed activity with a floor, scaled to the requested total
    w = rng.lognormal(0.0, activity_sigma, n_users)
    extra = n_ratings - n_users * min_per_user
    act = min_per_user + np.floor(extra * w / w.sum()).astype(np.int64)
    act = np.minimum(act, n_items // 2)
    short = n_ratings - act.sum()
    if short > 0:  # hand out rounding leftovers to random users below the cap
        room = np.flatnonzero(act < n_items // 2)
        np.add.at(act, rng.choice(room, size=int(short)), 1)
        act = np.minimum(act, n_items // 2)

    ranks = np.arange(1, n_items + 1, dtype=np.float64)
    p = 1.0 / (ranks + zipf_offset) ** zipf_exponent
    cdf = np.cumsum(p / p.sum())
    item_of_rank = rng.permutation(n_items).astype(np.int32)

    users_out, items_out = [], []
    # process users in chunks to bound memory; oversample then drop repeats
    chunk = max(1, int(4_000_000 // max(act.mean(), 1)))
    for start in range(0, n_users, chunk):
        a = act[start : start + chunk]
        # heavy users hit the popular head repeatedly: oversample them more
        draws = (a * (1.6 + 8.0 * a / n_items) + 10).astype(np.int64)
        u = np.repeat(np.arange(start, start + a.size, dtype=np.int64), draws)
        r = np.searchsorted(cdf, rng.random(u.size) * cdf[-1]).astype(np.int64)
        r = np.minimum(r, n_items - 1)
        key = np.unique(u * n_items + r)  # sorted unique (user, rank)
        uu = key // n_items
        rr = key % n_items
        # random order within a user, then keep the first act[u] of each user
        order = np.lexsort((rng.random(uu.size), uu))
        uu, rr = uu[order], rr[order]
        first = np.searchsorted(uu, np.arange(start, start + a.size))
        pos = np.arange(uu.size) - np.repeat(first, np.diff(np.append(first, uu.size)))
        keep = pos < a[uu - start]
        users_out.append(uu[keep].astype(np.int32))
        items_out.append(item_of_rank[rr[keep]])
    user = np.concatenate(users_out)
    item = np.concatenate(items_out)

    mu = 3.55
    bu = rng.normal(0, 0.45, n_users)
    pop = np.log1p(np.bincount(item, minlength=n_items))
    bi = rng.normal(0, 0.45, n_items) + 0.08 * (pop - pop.mean())
    P = rng.normal(0, 0.35, (n_users, rank)).astype(np.float32)
    Q = rng.normal(0, 0.35, (n_items, rank)).astype(np.float32)
    rating = np.empty(user.size, dtype=np.float32)
    step = 2_000_000
    for s in range(0, user.size, step):
        uu, ii = user[s : s + step], item[s : s + step]
        x = mu + bu[uu] + bi[ii] + np.einsum("ij,ij->i", P[uu], Q[ii]) * 1.5
        x += rng.normal(0, noise, uu.size)
        rating[s : s + step] = np.clip(np.rint(x), 1, 5)
    return user, item, rating
