"""Full recompute through real Celery workers: another checkout's code ("before", e.g.
main: ``git archive main | tar -x -C /tmp/base``, its .venv linked) against this tree's
("after"), alternating, on the same database (``bench/pipeline.py``'s var/bench/SIZE.sqlite3,
made by ``bench/pipeline.py recompute --data SIZE``) and a private Redis. A fresh worker for
each run (numba's compiled kernels come from the disk cache after the warm-up run).

Per run: wall seconds from queueing to publish, and from ``bench/task_timer.py`` (loaded
into each worker): the user-user stage (before: the "uu" shards; after: the "uu:pairs"
shards and the "uu:merge" shards), wall and CPU seconds summed over its tasks, and every
task's CPU seconds. On a shared machine the CPU seconds are the steadier figure.

    python bench/recompute_ab.py 1M --before /tmp/base --workers 1 2 --repeat 1
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
import django  # noqa: E402

from bench import pipeline as bp  # noqa: E402
from recsite import redis_server  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("size")
parser.add_argument("--before", type=Path, required=True, help="the other checkout")
parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
parser.add_argument("--repeat", type=int, default=3)
parser.add_argument("--shards", type=int, default=4)
args = parser.parse_args()
TREES = {"before": args.before, "after": ROOT}

port = redis_server.free_port()
redis = redis_server.start(port, bp.WORK / "redis-ab")
env = bp._environment(bp.WORK / f"{args.size}.sqlite3", port)
env["RECOMPUTE_SHARDS"] = os.environ["RECOMPUTE_SHARDS"] = str(args.shards)
env["PYTHONPATH"] = str(HERE)
django.setup()


def worker(tree: Path, n: int, log: Path, timer: Path) -> subprocess.Popen:
    timed = {**env, "SHARD_TIMER_OUT": str(timer)}
    return bp._worker(timed, n, log, cwd=tree, extra=("-I", "task_timer"), timeout=300)


def one_run(timer: Path) -> dict:
    start = time.time()
    wall = bp._timed_recompute()
    tasks = [json.loads(line) for line in timer.read_text().splitlines()]
    tasks = [t for t in tasks if t["end"] >= start]
    shards = [t for t in tasks if t["task"] == "recompute_shard"]
    uu = [t for t in shards if t["args"][2].startswith("uu")]
    by_kind = {}
    for t in tasks:
        name = t["args"][2] if t["task"] == "recompute_shard" else t["task"]
        wall_cpu = by_kind.setdefault(name, [0.0, 0.0])
        wall_cpu[0] += t["wall"]
        wall_cpu[1] += t["cpu"]
    return {
        "wall": round(wall, 2),
        "uu_wall": round(sum(t["wall"] for t in uu), 2),
        "uu_cpu": round(sum(t["cpu"] for t in uu), 2),
        "total_task_cpu": round(sum(t["cpu"] for t in tasks), 2),
        "by_kind_wall_cpu": {k: [round(a, 2), round(b, 2)] for k, (a, b) in by_kind.items()},
    }


results = {}
try:
    for n in args.workers:
        for rep in range(args.repeat + 1):
            for label, tree in TREES.items():
                timer = bp.WORK / f"timer-{label}-{n}.jsonl"
                proc = worker(tree, n, bp.WORK / f"worker-ab-{label}-{n}.log", timer)
                try:
                    row = one_run(timer)
                finally:
                    proc.terminate()
                    proc.wait()
                if rep == 0:
                    print(f"{args.size} {label} {n} process(es) warm-up {row}", flush=True)
                    continue
                results.setdefault(f"{label}-{n}", []).append(row)
                print(f"{args.size} {label} {n} process(es) {rep}: {json.dumps(row)}", flush=True)
    measures = ("wall", "uu_wall", "uu_cpu", "total_task_cpu")
    summary = {
        key: {m: statistics.median(r[m] for r in rows) for m in measures}
        for key, rows in results.items()
    }
    print("MEDIANS", json.dumps(summary, indent=1), flush=True)
    bp.OUT.mkdir(parents=True, exist_ok=True)
    out = bp.OUT / f"recompute-ab-{args.size}.json"
    out.write_text(json.dumps({"runs": results, "medians": summary}, indent=1))
finally:
    redis.terminate()
    redis.wait()
