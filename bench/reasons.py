"""What the honest-reasons rules change, measured on MovieLens 100k (ua split).

    .venv/bin/python bench/reasons.py [--data ../shared/data/ml-100k]

With the product's lists (item-item and user-user cosine on BM25 weights, K=20 and 50,
user weight 0.7), for every ua.test user with a relevant (>= 4) test rating:

- NDCG@10 of ``recommend`` with and without ``min_neighbour_mean`` (the evidence floor:
  items the neighbours rated below min(3, the user's mean) on average are left out);
- in the top 30 without the floor (what was stored and shown before): the share of rows
  whose reason line quoted an average over 1 or 2 people, and the share the floor drops;
- the median time of one ``recommend`` call with and without the floor.

Skips with a message where the data is missing (its licence forbids shipping it here).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommendations.engine import RatingMatrix, bm25_weight, compute_neighbours, recommend  # noqa: E402
from recommendations.engine.data import default_ml100k_dir, read_ratings  # noqa: E402
from recommendations.engine.metrics import ranking_metrics  # noqa: E402
from recommendations.reasons import evidence_floor  # noqa: E402 (needs no settings)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args(argv)
    data = args.data or default_ml100k_dir()
    if not (data / "ua.base").exists():
        print(f"MovieLens 100k not found in {data}; skipped (set RECSITE_ML100K).")
        return 0
    train_arr = read_ratings(data / "ua.base")
    test_arr = read_ratings(data / "ua.test")
    catalogue = np.union1d(train_arr[1], test_arr[1])
    train = RatingMatrix.from_arrays(*train_arr, items=catalogue)
    weighted = bm25_weight(train)
    item_nb = compute_neighbours(weighted, kind="item", measure="cosine", k=20, shrinkage=0)
    user_nb = compute_neighbours(weighted, kind="user", measure="cosine", k=50, shrinkage=0)

    u_idx, i_idx = train.user_indices(test_arr[0]), train.item_indices(test_arr[1])
    relevant: dict[int, list[int]] = {}
    for u, i, s in zip(u_idx.tolist(), i_idx.tolist(), test_arr[2].tolist(), strict=True):
        if s >= 4.0 and u >= 0 and i >= 0:
            relevant.setdefault(u, []).append(i)
    users = sorted(relevant)

    tops = {"plain": [], "floor": []}
    seconds = {"plain": [], "floor": []}
    shown = few = dropped = 0
    for u in users:
        items, scores = train.user_row(u)
        kw = {"item_neighbours": item_nb, "user_neighbours": user_nb, "matrix": train, "user": u}
        floor = {"min_neighbour_mean": evidence_floor(scores)}
        for name, extra in (("plain", {}), ("floor", floor)):
            t0 = time.perf_counter()
            rec = recommend(items, scores, n=30, user_weight=0.7, **kw, **extra)
            seconds[name].append(time.perf_counter() - t0)
            top = np.full(10, -1, dtype=np.int64)
            top[: min(10, rec.items.size)] = rec.items[:10]
            tops[name].append(top)
            if name == "plain":
                plain = rec
            else:
                kept = set(rec.items.tolist())
        shown += plain.items.size
        few += int(((plain.neighbour_counts >= 1) & (plain.neighbour_counts <= 2)).sum())
        dropped += sum(1 for j in plain.items.tolist() if j not in kept)

    rel = [np.asarray(relevant[u]) for u in users]
    print(f"MovieLens 100k ua: {train.nnz} train ratings, {len(users)} test users")
    for name in ("plain", "floor"):
        m = ranking_metrics(np.vstack(tops[name]), rel, train.n_items)
        print(
            f"  {name:5s}  NDCG@10 {m['ndcg@10']:.4f}  precision@10 {m['precision@10']:.4f}"
            f"  coverage@10 {m['coverage@10']:.3f}"
            f"  recommend() median {1000 * np.median(seconds[name]):.3f} ms"
        )
    print(
        f"  top-30 rows before: {shown}; quoting 1 or 2 people: {few} ({100 * few / shown:.1f}%);"
        f" left out by the evidence floor: {dropped} ({100 * dropped / shown:.1f}%)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
