"""Benchmarks of the recommendations pipeline on real services.

    python bench/pipeline.py recompute [--data ml100k|1M ...] [--workers 1 2] [--repeat 3]
    python bench/pipeline.py freshness [--ratings 40]
    python bench/pipeline.py update [--data ml100k 1M 10M] [--ratings 200] [--baseline main]
    python bench/pipeline.py drift [--ratings 100 1000]

``recompute`` imports the data into a SQLite database of its own (var/bench/), starts a
private Redis and real Celery workers (1, then 2 worker processes), and times full
recomputes from queueing to publish (median of --repeat runs after one warm-up run).
``freshness`` serves the API with gunicorn on loopback next to one worker, rates items
through ``PUT /api/v1/me/ratings/{id}/`` as a MovieLens user, and polls the "people like
you" data (``GET /api/v1/me/similar-users/``) until it changes: p50/p95 of rating to panel.
``update`` times the incremental update's computation per rating (the worker's patched
model: the user's row replaced, their "people like you" row, the rated item's two rows;
no database or Redis), wall and CPU time, after 5 untimed warm-up updates; "task" is the
per-rating task's part (a popular item's rows whose sums are not kept are deferred to a
task of their own: "deferred", timed apart, then computed as that task would), on ratings
drawn two ways (``--pick``: any user and item; or as ratings fall, active users and
popular items more often); with ``--baseline REF`` also the model at that git ref on the
same ratings in the same process, with ``--rebuild`` the path it replaced (rebuilding
the inputs from the whole snapshot, then the same rows), and the process RSS.
``drift`` applies random ratings to MovieLens 100k incrementally, then compares the rows
the updates wrote with a full recompute from the same ratings (weights and baselines
refitted): top-K overlap and score differences.
Numbers go to stdout, and to bench/out/pipeline-*.json.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = ROOT / "var" / "bench"
OUT = ROOT / "bench" / "out"


def _environment(db: Path, redis_port: int) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "recsite.settings.base",
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{db}",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "RECOMPUTE_ON_WORKER_START": "0",
        "API_THROTTLE_USER": "1000000/min",
        "API_THROTTLE_ANON": "1000000/min",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    return env


def _manage(env, *args) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def _database(name: str, env: dict, data_dir: Path) -> tuple[Path, dict]:
    """A migrated database holding ``name``'s ratings; returns it and the import's figures."""
    db = WORK / f"{name}.sqlite3"
    figures = {}
    if not db.exists():
        _manage(env, "migrate", "--noinput", "-v0")
        if name == "ml100k":
            source = data_dir
        else:
            from recommendations.engine.synthetic import SIZES, generate

            users, items, scores = generate(*SIZES[name], seed=0)
            source = WORK / f"{name}.csv"
            with source.open("w") as handle:
                handle.write("user,item,rating\n")
                for u, i, s in zip(users.tolist(), items.tolist(), scores.tolist(), strict=True):
                    handle.write(f"{u},{i},{s:g}\n")
        started = time.perf_counter()
        out = _manage(env, "import_ratings", str(source), "-v0")
        figures = {"import_seconds": round(time.perf_counter() - started, 1), "import": out.strip()}
        print(f"  imported {name}: {out.strip()}")
    return db, figures


def _worker(
    env, concurrency: int, log: Path, *, cwd: Path = ROOT, extra=(), timeout: float = 60
) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "recsite", "worker", f"-c{concurrency}",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO", *extra],
        cwd=cwd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while " ready." not in log.read_text(errors="replace"):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"worker did not start:\n{log.read_text()}")
        time.sleep(0.1)
    return proc


def _timed_recompute() -> float:
    from recommendations import pipeline
    from recommendations.models import RecomputeRun

    run = pipeline.recompute_start(trigger="bench")
    while True:
        run = RecomputeRun.objects.get(pk=run.pk)
        if run.status in ("succeeded", "failed", "skipped"):
            break
        time.sleep(0.05)
    if run.status != "succeeded":
        raise SystemExit(f"recompute {run.pk} {run.status}: {run.error}")
    return (run.finished - run.created).total_seconds()


def recompute(args) -> dict:
    """One process per data set: Django and Celery are set up once per process."""
    if len(args.data) > 1:
        results = {}
        for name in args.data:
            command = [
                sys.executable, __file__, "recompute", "--data", name,
                "--repeat", str(args.repeat), "--shards", str(args.shards),
                "--ml100k", str(args.ml100k), "--threads", str(args.threads),
                "--workers", *map(str, args.workers),
            ]  # fmt: skip
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            results.update(json.loads((OUT / f"pipeline-recompute-{name}.json").read_text()))
        return results
    from recsite import redis_server

    (name,) = args.data
    WORK.mkdir(parents=True, exist_ok=True)
    port = redis_server.free_port()
    redis = redis_server.start(port, WORK / "redis")
    env = _environment(WORK / f"{name}.sqlite3", port)
    env["RECOMPUTE_SHARDS"] = os.environ["RECOMPUTE_SHARDS"] = str(args.shards)
    if args.threads:
        # Kernel threads per worker process; 1 shows what each added process brings.
        env["NUMBA_NUM_THREADS"] = str(args.threads)
    try:
        _, row = _database(name, env, args.ml100k)
        import django

        django.setup()
        for workers in args.workers:
            proc = _worker(env, workers, WORK / f"worker-{name}-{workers}.log")
            try:
                _timed_recompute()  # warm-up: loads the compiled kernels in each process
                times = [_timed_recompute() for _ in range(args.repeat)]
            finally:
                proc.terminate()
                proc.wait()
            median = statistics.median(times)
            row[f"workers_{workers}"] = {
                "median_seconds": round(median, 2),
                "runs": [round(t, 2) for t in times],
            }
            print(f"  {name}: {workers} worker process(es): median {median:.2f} s {times}")
        if len(args.workers) == 2:
            a, b = (row[f"workers_{w}"]["median_seconds"] for w in args.workers)
            row["speedup"] = round(a / b, 2)
    finally:
        redis.terminate()
        redis.wait()
    OUT.mkdir(parents=True, exist_ok=True)
    row["threads_per_worker"] = args.threads or "all"
    result = {name: row}
    (OUT / f"pipeline-recompute-{name}.json").write_text(json.dumps(result, indent=2))
    return result


def _http(method, url, token, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Token {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def freshness(args) -> dict:
    from recsite import redis_server

    WORK.mkdir(parents=True, exist_ok=True)
    port = redis_server.free_port()
    redis = redis_server.start(port, WORK / "redis")
    env = _environment(WORK / "ml100k.sqlite3", port)
    procs = []
    try:
        _database("ml100k", env, args.ml100k)
        import django

        django.setup()
        from django.contrib.auth import get_user_model

        from catalog.api.services import auth_token_get_or_create
        from catalog.models import Item, Rating
        from recommendations import pipeline

        pipeline.recompute_sync(trigger="bench")
        user = get_user_model().objects.get(username="ml100k-1")
        token = auth_token_get_or_create(user=user).key
        web_port = redis_server.free_port()
        procs.append(_worker(env, 1, WORK / "worker-freshness.log"))
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "recsite.wsgi", "-w", "2",
                 "-b", f"127.0.0.1:{web_port}"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        base = f"http://127.0.0.1:{web_port}/api/v1"
        deadline = time.monotonic() + 30
        while True:
            try:
                _http("GET", f"{base}/health/", token)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        rated = set(Rating.objects.filter(user=user).values_list("item_id", flat=True))
        candidates = [
            i
            for i in Item.objects.order_by("-rating_count").values_list("pk", flat=True)[:400]
            if i not in rated
        ]

        def rate_and_wait(item_id: int, score: float, limit: float) -> float | None:
            _, before = _http("GET", f"{base}/me/similar-users/", token)
            _http("PUT", f"{base}/me/ratings/{item_id}/", token, {"score": score})
            start = time.perf_counter()
            while time.perf_counter() - start < limit:
                _, now = _http("GET", f"{base}/me/similar-users/", token)
                if now != before:
                    return time.perf_counter() - start
                time.sleep(0.01)
            return None

        # The worker's first update loads (or, with a stale cache, compiles) the engine's
        # kernels: reported apart, not mixed into the steady-state figures.
        cold = rate_and_wait(candidates[0], 4.0, 300)
        print(f"  first rating after the worker started (cold): {cold:.2f} s")
        delays, missed = [], 0
        for n, item_id in enumerate(candidates[1 : args.ratings + 1]):
            delay = rate_and_wait(item_id, 1.0 + (n % 5), 10)
            if delay is None:
                missed += 1
            else:
                delays.append(delay)
            time.sleep(0.3)  # let the debounce window close so each rating is its own update
        delays.sort()
        p50 = statistics.median(delays)
        p95 = delays[min(len(delays) - 1, int(round(0.95 * (len(delays) - 1))))]
        print(
            f"  rating -> panel over {len(delays)} ratings: p50 {p50 * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms, missed {missed}"
        )
        return {
            "ratings": len(delays),
            "p50_ms": round(p50 * 1000),
            "p95_ms": round(p95 * 1000),
            "missed": missed,
            "cold_first_seconds": round(cold, 2),
        }
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
        redis.terminate()
        redis.wait()


def _ratings_of(name: str, ml100k: Path):
    """(users, items, scores) arrays of MovieLens 100k or a synthetic size."""
    import numpy as np

    if name == "ml100k":
        raw = np.loadtxt(ml100k / "u.data", dtype=np.int64)
        return raw[:, 0], raw[:, 1], raw[:, 2].astype(np.float64)
    from recommendations.engine.synthetic import SIZES, generate

    return generate(*SIZES[name], seed=0)


def _inputs(users, items, scores):
    from recommendations.engine import Baselines, RatingMatrix, bm25_weight

    m = RatingMatrix.from_arrays(users, items, scores)
    return m, bm25_weight(m), Baselines().fit(m)


def _rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _baseline_model_class(ref: str):
    """``PatchableModel`` as ``recommendations/incremental.py`` is at git ``ref``, loaded
    beside this tree's (the engine it imports is this tree's), so both run on the same
    ratings in the same process."""
    import importlib.util
    import tempfile

    source = subprocess.run(
        ["git", "show", f"{ref}:recommendations/incremental.py"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "incremental_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("incremental_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PatchableModel


def update(args) -> dict:
    """Per-rating cost of the incremental update: this tree's patched model, the one at
    ``--baseline`` (a git ref) on the same ratings, and the full rebuild it replaced."""
    import numpy as np

    from recommendations.engine import compute_neighbours
    from recommendations.incremental import PatchableModel

    classes = {"this": PatchableModel}
    if args.baseline:
        classes[args.baseline] = _baseline_model_class(args.baseline)
    out = {}
    for name in args.data:
        users, items, scores = _ratings_of(name, args.ml100k)
        inputs = _inputs(users, items, scores)
        row = {"ratings_in_model": int(inputs[0].nnz), "updates": args.ratings}
        for pick in args.pick:
            models, loads = {}, {}
            for label, cls in classes.items():
                t = time.perf_counter()
                models[label] = cls(*inputs)
                loads[label] = round(time.perf_counter() - t, 2)
            base = inputs[0]
            rng = np.random.default_rng(0)
            wall = {label: [] for label in models}
            cpu = {label: [] for label in models}
            # The per-rating task's part (without the popular items' rows it defers, where
            # the model defers them) and the deferred rows' own cost, per deferred rating.
            task = {label: [] for label in models}
            deferred = {label: [] for label in models}
            task_cpu = {label: [] for label in models}
            deferred_cpu = {label: [] for label in models}
            warm = 5  # the first updates load the compiled kernels: not timed
            for n in range(warm + args.ratings):
                if pick == "uniform":  # any user, any item
                    u = int(rng.integers(base.n_users))
                    item = int(rng.integers(base.n_items))
                else:  # as ratings fall: active users and popular items more often
                    u = int(np.searchsorted(base.csr.indptr, rng.integers(base.nnz), "right")) - 1
                    item = int(base.csr.indices[rng.integers(base.nnz)])
                user_id = int(base.user_ids[u])
                score = float(rng.integers(1, 6))
                for label, model in models.items():
                    row_items, row_scores, _, _ = model.user_row(model.user_index(user_id))
                    ids = np.append(base.item_ids[row_items], base.item_ids[item])
                    new = np.append(row_scores, score)
                    ids, first = np.unique(ids[::-1], return_index=True)  # the new score wins
                    costly = getattr(model, "item_sums_costly", lambda i: False)(item)
                    started, cpu_started = time.perf_counter(), time.thread_time()
                    v = model.set_user_ratings(user_id, ids, new[::-1][first])
                    model.user_neighbours(v, 50)
                    split, cpu_split = time.perf_counter(), time.thread_time()
                    model.item_rows(item, k_cosine=20, k_pearson=200, shrinkage=100.0)
                    if n >= warm:
                        done, cpu_done = time.perf_counter(), time.thread_time()
                        wall[label].append(done - started)
                        cpu[label].append(cpu_done - cpu_started)
                        task[label].append((split if costly else done) - started)
                        task_cpu[label].append((cpu_split if costly else cpu_done) - cpu_started)
                        if costly:
                            deferred[label].append(done - split)
                            deferred_cpu[label].append(cpu_done - cpu_split)
            for label in models:
                row[f"{pick}/{label}"] = {
                    "p50_ms": round(statistics.median(wall[label]) * 1000, 2),
                    "p95_ms": round(_percentile(wall[label], 0.95) * 1000, 2),
                    "cpu_p50_ms": round(statistics.median(cpu[label]) * 1000, 2),
                    "cpu_p95_ms": round(_percentile(cpu[label], 0.95) * 1000, 2),
                    "task_p50_ms": round(statistics.median(task[label]) * 1000, 2),
                    "task_p95_ms": round(_percentile(task[label], 0.95) * 1000, 2),
                    "task_cpu_p50_ms": round(statistics.median(task_cpu[label]) * 1000, 2),
                    "task_cpu_p95_ms": round(_percentile(task_cpu[label], 0.95) * 1000, 2),
                    "deferred": len(deferred[label]),
                    "deferred_p50_ms": round(statistics.median(deferred[label] or [0]) * 1000, 2),
                    "deferred_p95_ms": round(_percentile(deferred[label] or [0], 0.95) * 1000, 2),
                    "deferred_cpu_p50_ms": round(
                        statistics.median(deferred_cpu[label] or [0]) * 1000, 2
                    ),
                    "deferred_cpu_p95_ms": round(
                        _percentile(deferred_cpu[label] or [0], 0.95) * 1000, 2
                    ),
                    "model_load_seconds": loads[label],
                }
                print(f"  {name} {pick} {label}: {row[f'{pick}/{label}']}", flush=True)
            del models
        if args.rebuild:
            # The path this replaced: the whole snapshot's inputs rebuilt, then the same rows.
            old = []
            for _ in range(3):
                start = time.perf_counter()
                m, ranking, baselines = _inputs(users, items, scores)
                compute_neighbours(ranking, kind="user", k=50, shrinkage=0.0, rows=(0, 1))
                compute_neighbours(ranking, kind="item", k=20, shrinkage=0.0, rows=(0, 1))
                compute_neighbours(
                    m, kind="item", measure="pearson_baseline", k=200, shrinkage=100.0,
                    rows=(0, 1), baselines=baselines,
                )  # fmt: skip
                old.append(time.perf_counter() - start)
            row["rebuild_path_median_ms"] = round(statistics.median(old) * 1000, 1)
        row["peak_rss_mib"] = round(_rss_mib())
        row["load_average"] = round(os.getloadavg()[0], 1)
        out[name] = row
        print(f"  {name}: {row}", flush=True)
        del inputs, users, items, scores
    return out


def drift(args) -> dict:
    """How far incrementally written rows are from the next full recompute's rows."""
    import numpy as np

    from recommendations.engine import compute_neighbours
    from recommendations.incremental import PatchableModel

    users, items, scores = _ratings_of("ml100k", args.ml100k)
    out = {}
    for n_ratings in args.drift_ratings:
        model = PatchableModel(*_inputs(users, items, scores))
        ratings = {(int(u), int(i)): float(s) for u, i, s in zip(users, items, scores, strict=True)}
        rng = np.random.default_rng(1)
        base = model.base
        written_uu, written_ii = {}, {}
        for _ in range(n_ratings):
            user_id = int(base.user_ids[rng.integers(base.n_users)])
            item_id = int(base.item_ids[rng.integers(base.n_items)])
            ratings[(user_id, item_id)] = float(rng.integers(1, 6))
            mine = sorted((i, s) for (u, i), s in ratings.items() if u == user_id)
            u = model.set_user_ratings(user_id, [i for i, _ in mine], [s for _, s in mine])
            written_uu[user_id] = model.user_neighbours(u, 50)
            j = int(model.item_indices([item_id])[0])
            written_ii[item_id] = model.item_rows(j, k_cosine=20, k_pearson=200, shrinkage=100.0)[0]
        keys = list(ratings)
        m, ranking, _ = _inputs(
            [k[0] for k in keys], [k[1] for k in keys], [ratings[k] for k in keys]
        )
        full_uu = compute_neighbours(ranking, kind="user", k=50, shrinkage=0.0, dtype=np.float64)
        full_ii = compute_neighbours(ranking, kind="item", k=20, shrinkage=0.0, dtype=np.float64)

        def compare(written, full, ids, k):
            overlaps, diffs = [], []
            for row_id, (got_ids, got_scores, _) in written.items():
                r = int(np.searchsorted(ids, row_id))
                idx = full.indices[r]
                want_ids = ids[idx[idx >= 0]][:k]
                want = dict(zip(want_ids.tolist(), full.scores[r].tolist(), strict=False))
                got_ids = got_ids[:k]
                overlaps.append(len(set(got_ids.tolist()) & set(want)) / max(len(want), 1))
                diffs += [
                    abs(s - want[i])
                    for i, s in zip(got_ids.tolist(), got_scores, strict=True)
                    if i in want
                ]
            return {
                "rows": len(written),
                f"top{k}_overlap_mean": round(float(np.mean(overlaps)), 4),
                f"top{k}_overlap_min": round(float(np.min(overlaps)), 4),
                "score_abs_diff_median": float(f"{np.median(diffs):.3g}"),
                "score_abs_diff_max": float(f"{np.max(diffs):.3g}"),
            }

        out[n_ratings] = {
            "uu": compare(written_uu, full_uu, m.user_ids, 50),
            "ii": compare(written_ii, full_ii, m.item_ids, 20),
        }
        print(f"  after {n_ratings} random ratings: {out[n_ratings]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["recompute", "freshness", "update", "drift"])
    parser.add_argument(
        "--data", nargs="+", default=["ml100k", "1M"], choices=["ml100k", "1M", "10M", "25M"]
    )
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument(
        "--threads", type=int, default=1, help="kernel threads per worker process (0: all cores)"
    )
    parser.add_argument("--ratings", type=int, default=40)
    parser.add_argument(
        "--pick", nargs="+", default=["uniform", "as-rated"], choices=["uniform", "as-rated"],
        help="update: which (user, item) each rating is: any user and item, or as ratings "
        "fall (a random rating's user, another random rating's item)",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", default="", help="update: also time incremental.py at this git ref"
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="update: also time the full rebuild path"
    )
    parser.add_argument("--drift-ratings", type=int, nargs="+", default=[100, 1000])
    parser.add_argument(
        "--ml100k",
        type=Path,
        default=Path(os.environ.get("RECSITE_ML100K", ROOT.parent / "shared" / "data" / "ml-100k")),
    )
    args = parser.parse_args()
    if not (args.ml100k / "u.data").is_file() and (
        "ml100k" in args.data or args.what in ("freshness", "drift")
    ):
        raise SystemExit(f"MovieLens 100k not found at {args.ml100k}; give --ml100k DIR")
    print(f"== pipeline {args.what} ==")
    what = {"recompute": recompute, "freshness": freshness, "update": update, "drift": drift}
    result = what[args.what](args)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"pipeline-{args.what}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
