"""User-user neighbours at a synthetic size (default 10M), one kernel thread, CPU seconds
(the machine is shared: CPU seconds are steadier than wall time):

- main's row path (``compute_neighbours(rows=...)``, each pair from both sides) on rows
  0..n/16, times 16 (users are in random order, so row costs are uniform);
- the symmetric pass's shards 0, 5, 10 and 15 of 16 ranges of equal pair work
  (``compute_neighbour_pairs``), their mean times 16;
- the merge of the last sixteenth of the rows from those 4 shards' partial lists.

    python bench/shard_sample.py 10M
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommendations.engine import RatingMatrix, bm25_weight, compute_neighbours  # noqa: E402
from recommendations.engine.similarity import (  # noqa: E402
    compute_neighbour_pairs,
    merge_neighbours,
    pair_ranges,
    pair_work,
)
from recommendations.engine.synthetic import SIZES, generate  # noqa: E402


def timed(call):
    started = time.process_time()
    result = call()
    return result, time.process_time() - started


def main(size: str) -> dict:
    users, items, scores = generate(*SIZES[size], seed=0)
    weights = bm25_weight(RatingMatrix.from_arrays(users, items, scores))
    del users, items, scores
    n = weights.n_users
    opts = {"kind": "user", "measure": "cosine", "k": 50, "shrinkage": 0.0, "n_threads": 1}
    compute_neighbours(weights, rows=(0, 3), **opts)  # load the compiled kernels
    compute_neighbour_pairs(weights, rows=(n - 3, n), **opts)
    _, rows_cpu = timed(lambda: compute_neighbours(weights, rows=(0, n // 16), **opts))
    print(f"{size} row path, 1/16 of the rows: {rows_cpu:.2f} CPU s", flush=True)
    ranges, plan_cpu = timed(lambda: pair_ranges(pair_work(weights, kind="user"), 16))
    parts, shard_cpu = [], []
    for q in (0, 5, 10, 15):
        part, cpu = timed(lambda q=q: compute_neighbour_pairs(weights, rows=ranges[q], **opts))
        parts.append(part)
        shard_cpu.append(cpu)
        print(f"pair shard {q} {ranges[q]}: {cpu:.2f} CPU s", flush=True)
    _, merge_cpu = timed(lambda: merge_neighbours(parts, rows=(n - n // 16, n), k=50))
    result = {
        "size": size,
        "n_users": n,
        "rows_total_cpu_est": round(rows_cpu * 16, 1),
        "pairs_total_cpu_est": round(float(np.mean(shard_cpu)) * 16, 1),
        "pair_shards_sampled_cpu": [round(x, 2) for x in shard_cpu],
        "merge_sixteenth_cpu": round(merge_cpu, 2),
        "plan_cpu": round(plan_cpu, 2),
    }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "10M")
