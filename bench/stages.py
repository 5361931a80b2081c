"""Where a full recompute's time goes, stage by stage, in one process.

    nice -n 10 python bench/stages.py [--ratings 1M] [--tune] [--skip-model]

Runs the recompute's stages as ``pipeline.recompute_shard`` does (the same ``build`` and
``model_scoring`` calls, the same store writes to a private redis-server started here),
one shard after another in this process, on synthetic MovieLens-shaped ratings
(``recommendations.engine.synthetic``: 1M = 6k users x 3.7k items, 10M = 70k x 10.7k) with
synthetic side information, every user with a taste stamp. No database: the snapshot is
made from the generated arrays, so ``prepare`` here is the snapshot's arrays, the derived
inputs and their writes to Redis, without the database read.

For each stage: CPU seconds of this process (every thread: numba kernels count in full)
and wall seconds. The model stage fits with fixed segment weights (what a recompute does
between two tunings, ``MODEL_RETUNE_HOURS``); ``--tune`` tunes them (the first run's cost).
``--skip-model`` reuses var/bench/stages-parts-<size>.npz from an earlier run.

A table on stdout, JSON in bench/out/stages-<size>.json.
"""

import argparse
import json
import os
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ready_stage import SIZES, _synthetic  # noqa: E402  (sets the Django settings)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Clock:
    def __init__(self):
        self.rows: dict[str, dict] = {}

    def __call__(self, stage: str):
        clock = self

        class _Timed:
            def __enter__(self):
                self.wall, self.cpu = time.perf_counter(), time.process_time()

            def __exit__(self, *exc):
                row = clock.rows.setdefault(stage, {"cpu_s": 0.0, "wall_s": 0.0, "shards": 0})
                row["cpu_s"] += time.process_time() - self.cpu
                row["wall_s"] += time.perf_counter() - self.wall
                row["shards"] += 1

        return _Timed()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ratings", default="1M", choices=sorted(SIZES))
    parser.add_argument("--tune", action="store_true")
    parser.add_argument("--skip-model", action="store_true")
    args = parser.parse_args()

    from recsite import redis_server

    port = _free_port()
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    redis = redis_server.start(port, Path(tempfile.mkdtemp(prefix="stages-redis-")))
    try:
        result = _run(args)
    finally:
        redis.terminate()
        redis.wait(timeout=10)
    out = ROOT / "bench" / "out" / f"stages-{args.ratings}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))


def _run(args) -> dict:
    import django

    django.setup()
    import numpy as np

    from recommendations import build, model_scoring, store
    from recommendations.conf import get as option
    from recommendations.engine.blend import WARM_START

    clock = _Clock()
    matrix, active, info = _synthetic(args.ratings)
    csr = matrix.csr
    users = np.repeat(matrix.user_ids, np.diff(csr.indptr))
    ratings = {"user": users, "item": matrix.item_ids[csr.indices], "score": csr.data}
    context = {
        "stamp_user": matrix.user_ids,
        "stamp": np.full(matrix.n_users, b"s", dtype="S1"),
        "hidden_user": np.empty(0, np.int64),
        "hidden_item": np.empty(0, np.int64),
        "inactive": np.empty(0, np.int64),
    }
    version, ttl, shards = f"stages-{args.ratings}", 3600, option("SHARDS")
    with clock("prepare"):
        arrays = build.snapshot_arrays(ratings, context)
        inputs = build.ModelInputs.from_snapshot(arrays)
        store.snapshot_put(version, arrays, ttl=ttl)
        store.write_biases(version, build.bias_fields(inputs), ttl=ttl)
        plan = build.shard_plan(inputs, shards)
    saved = ROOT / "var" / "bench" / f"stages-parts-{args.ratings}.npz"
    if args.skip_model:
        with np.load(saved, allow_pickle=False) as npz:
            parts_arrays = {k: npz[k] for k in npz.files}
        store.snapshot_put(version, parts_arrays, ttl=ttl, part="model")
    else:
        with clock("model"):
            weights = None if args.tune else {"few": WARM_START, "many": WARM_START}
            parts_arrays = model_scoring.fit_parts(
                arrays, info=info, active_ids=active, weights=weights
            )
            store.snapshot_put(version, parts_arrays, ttl=ttl, part="model")
        saved.parent.mkdir(parents=True, exist_ok=True)
        np.savez(saved, **parts_arrays)
    for kind, start, stop in plan:
        with clock(kind):
            if kind.endswith(build.PAIRS):
                for group, part in build.compute_pairs(inputs, kind, start, stop).items():
                    store.partial_put(version, group, part, ttl=ttl)
            else:
                store.write_rows(
                    version, kind, build.compute_rows(inputs, kind, start, stop), ttl=ttl
                )
    for kind, start, stop in build.merge_plan(inputs, shards):
        with clock(kind):
            rows = build.compute_merged(inputs, version, kind, start, stop)
            store.write_rows(version, kind.removesuffix(build.MERGE), rows, ttl=ttl)
    with clock("ready (load lists)"):
        lists = build.ListInputs.load(version, inputs, arrays)
        parts = model_scoring.ModelParts(store.snapshot_get(version, part="model"))
    for kind, start, stop in build.ready_plan(inputs, shards):
        with clock(kind):
            rows = build.compute_ready(inputs, lists, start, stop, model=parts)
            store.write_rows(version, kind, rows, ttl=ttl)
    total_cpu = sum(r["cpu_s"] for r in clock.rows.values())
    result = {
        "size": args.ratings,
        "ratings": int(matrix.nnz),
        "users": int(matrix.n_users),
        "items": int(parts.n_items),
        "shards": shards,
        "tuned": bool(args.tune),
        "model_skipped": bool(args.skip_model),
        "stages": {
            k: {key: round(value, 1) for key, value in v.items()} for k, v in clock.rows.items()
        },
        "total_cpu_s": round(total_cpu, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(f"{'stage':<22}{'shards':>7}{'CPU s':>10}{'wall s':>10}")
    for k, v in result["stages"].items():
        print(f"{k:<22}{v['shards']:>7}{v['cpu_s']:>10}{v['wall_s']:>10}")
    print(f"{'total':<22}{'':>7}{result['total_cpu_s']:>10}")
    print(json.dumps({k: v for k, v in result.items() if k != "stages"}))
    return result


if __name__ == "__main__":
    main()
