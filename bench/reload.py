"""The first incremental update after a heavy step released the process's model state.

    nice -n 5 python bench/reload.py --size 25M [--db postgres] [--users 15] [--runs 3]

The recompute's heavy steps (prepare, the model fits) drop the worker process's live
state (``pipeline.model_state_release``) to stay under 3 GiB at 25M; the next update on
that process loads the live version again. This starts only the size's Redis, as
``bench/scale.py`` left it (``var/scale/redis-SIZE-DB``: run its ``recompute`` step
first), and no database: each update's ratings are the user's stored ones ("ur") with
the first score changed, where the worker reads them from the database (a few ms, not
counted here). Before the runs the live version is loaded once as a worker's warm-up
does (the first on this machine copies the snapshot from Redis and derives what the
prepare step had not: reported, not counted). Then, for ``--users`` users in turn, each
run:

- ``release``: ``model_state_release()`` (what the heavy step does; not counted);
- ``load``: the state of the live version loaded again (``model_state(v).patchable()``);
- ``rows``: the update's own work (``pipeline._update_rows``: the user's rows and the
  rated item's, written to Redis);
- ``first update``: the two, what the update task after a release costs beyond its reads;
- ``next update``: another user's update on the state now held, for comparison.

p50 / max per run, each figure the median of ``--runs`` runs. The rows are written to
this Redis's copy of the version, which is not saved: ``bench/scale.py``'s next run starts
from its dump as it was. Numbers to stdout and ``bench/out/reload-SIZE.json``.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

OUT = ROOT / "bench" / "out"


def measure(args) -> dict:
    import scale

    from recsite import redis_server

    port = redis_server.free_port()
    redis = redis_server.start(port, scale.WORK / f"redis-{args.size}-{args.db}", timeout=180)
    try:
        scale._environment("sqlite:///:memory:", port)  # no database is read
        import django

        django.setup()
        import numpy as np

        from recommendations import pipeline, store

        model = store.live_model()
        if model is None:
            raise SystemExit(f"no published version in {args.size}'s Redis: run scale.py first")
        version = model.version
        began = time.perf_counter()
        pipeline.model_update_warm()
        warm_s = time.perf_counter() - began
        r = store.client()
        ur = store.version_key(version, "ur")
        # sorted: a hash's order differs between Redis processes (a seeded hash)
        users = sorted(int(u) for u in r.hkeys(ur))
        chosen = np.random.default_rng(0).choice(users, 2 * args.users, replace=False).tolist()

        def change(user_id: int):
            own = store.decode_ratings(r.hget(ur, user_id))
            rated = own["item"].astype(np.int64)
            scores = own["score"].astype(np.float64)
            scores[0] = 5.5 - scores[0]  # another score of the same item
            return rated, scores, [int(rated[0])]

        runs = []
        for run in range(args.runs):
            load, rows, first, following = [], [], [], []
            for n in range(args.users):
                user_id, other = chosen[2 * n], chosen[2 * n + 1]
                rated, scores, items = change(user_id)
                pipeline.model_state_release()
                t0 = time.perf_counter()
                pipeline.model_state(version).patchable()
                t1 = time.perf_counter()
                pipeline._update_rows(version, user_id, rated, scores, items, defer=True)
                t2 = time.perf_counter()
                rated, scores, items = change(other)
                t3 = time.perf_counter()
                pipeline._update_rows(version, other, rated, scores, items, defer=True)
                t4 = time.perf_counter()
                load.append((t1 - t0) * 1000)
                rows.append((t2 - t1) * 1000)
                first.append((t2 - t0) * 1000)
                following.append((t4 - t3) * 1000)
            result = {
                name: {"p50_ms": _r(statistics.median(ms)), "max_ms": _r(max(ms))}
                for name, ms in (
                    ("load", load),
                    ("rows", rows),
                    ("first update", first),
                    ("next update", following),
                )
            }
            runs.append(result)
            print(json.dumps({"run": run + 1, **result}), flush=True)
        return {"runs": runs, "warm_up_s": _r(warm_s), "version": version}
    finally:
        redis.terminate()
        redis.wait()


def _r(x: float) -> float:
    return round(x, 2)


def medians(runs: list[dict]) -> dict:
    return {
        name: {key: _r(statistics.median(run[name][key] for run in runs)) for key in runs[0][name]}
        for name in runs[0]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="10M")
    parser.add_argument("--db", default="postgres", choices=["sqlite", "postgres"])
    parser.add_argument("--users", type=int, default=15)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--label", default="", help="suffix of the JSON file (e.g. before)")
    args = parser.parse_args()
    from conditions import LoadSampler, git_commit, product_commit

    began = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with LoadSampler() as load:
        result = measure(args)
    result |= {
        "medians": medians(result["runs"]),
        "size": args.size,
        "measured_at": began,
        "load_average": load.summary(),
        "commit": git_commit(),
        "product_commit": product_commit(),
        "command": f"python bench/reload.py --size {args.size} --db {args.db} "
        f"--users {args.users} --runs {args.runs}",
    }
    OUT.mkdir(parents=True, exist_ok=True)
    name = f"reload-{args.size}{'-' + args.label if args.label else ''}.json"
    (OUT / name).write_text(json.dumps(result, indent=1))
    print(f"{result['command']}  (load {result['load_average']})")
    print(f"warm-up before the runs: {result['warm_up_s']} s")
    print(f"{'':14} {'p50 ms':>9} {'max ms':>9}   (medians of {args.runs} runs)")
    for name, row in result["medians"].items():
        print(f"{name:14} {row['p50_ms']:>9} {row['max_ms']:>9}")


if __name__ == "__main__":
    main()
