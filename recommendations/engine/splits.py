"""Train/test splits of the cold-start protocols (issue 12), and validation carving.

Every split is a function of the ratings and a seed only, so the evaluation, the blend's
own validation split and the tests all see the same rows.

``newusers`` (P3u): 20% of the users, drawn with ``default_rng(seed).choice(sorted user
ids, round(0.2 * n_users), replace=False)``, keep only their first ``keep`` ratings by
(timestamp, item id) in train; the rest of their ratings are the test; everyone else's
ratings are all in train. On MovieLens 100k that is 189 users.

``newitems`` (P3i): 10% of the items with at least 5 ratings, drawn with
``default_rng(seed).choice(sorted eligible item ids, round(0.1 * n_eligible),
replace=False)``, lose all their ratings to the test set (135 items on MovieLens 100k).
The same generator then draws ``permutation(n_cold)``: the fixed random order that breaks
ties between cold items (MovieLens ids correlate with popularity, so ids must not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Split", "newitems_split", "newusers_split", "holdout_split"]


@dataclass(frozen=True, eq=False)
class Split:
    """Boolean masks over the input ratings, and what the split selected.

    Attributes:
        train, test: bool (n_ratings,) masks, disjoint, covering every rating.
        chosen: int64 sorted external ids of the new users or new items.
        tiebreak: int64 (chosen.size,) a fixed random rank of each chosen id (newitems);
            None for newusers.
    """

    train: np.ndarray
    test: np.ndarray
    chosen: np.ndarray
    tiebreak: np.ndarray | None = None


def newusers_split(users, items, timestamps, *, fraction=0.2, keep=5, seed=0) -> Split:
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    ts = np.asarray(timestamps, dtype=np.int64)
    ids = np.unique(users)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(ids, int(round(fraction * ids.size)), replace=False))
    order = np.lexsort((items, ts, users))  # by user, then (timestamp, item id)
    u_sorted = users[order]
    first = np.searchsorted(u_sorted, u_sorted, side="left")
    rank = np.empty(users.size, dtype=np.int64)
    rank[order] = np.arange(users.size) - first
    new = np.isin(users, chosen)
    test = new & (rank >= keep)
    return Split(train=~test, test=test, chosen=chosen)


def newitems_split(users, items, *, fraction=0.1, min_ratings=5, seed=0) -> Split:
    items = np.asarray(items, dtype=np.int64)
    ids, counts = np.unique(items, return_counts=True)
    eligible = ids[counts >= min_ratings]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(eligible, int(round(fraction * eligible.size)), replace=False)
    tiebreak = rng.permutation(chosen.size)
    order = np.argsort(chosen)
    test = np.isin(items, chosen)
    return Split(train=~test, test=test, chosen=chosen[order], tiebreak=tiebreak[order])


def holdout_split(users, *, fraction=0.2, seed=0, min_left=1) -> np.ndarray:
    """bool mask of ratings held out for validation: ``fraction`` of each user's ratings
    at random, leaving at least ``min_left`` in train (users with fewer keep them all).

    Used by the blend to carve a validation split out of its training data.
    """
    users = np.asarray(users, dtype=np.int64)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(users.size), users))
    u_sorted = users[order]
    first = np.searchsorted(u_sorted, u_sorted, side="left")
    last = np.searchsorted(u_sorted, u_sorted, side="right")
    n = last - first
    pos = np.arange(users.size) - first
    held = pos < np.minimum(np.floor(fraction * n), n - min_left)
    out = np.zeros(users.size, dtype=bool)
    out[order] = held
    return out
