"""The first read of a user with no stored list: ``me/recommendations/`` and the
``people_like_you`` panel computing the list live (``ranking.rank_from_store``) and
keeping it, in-process, p50/p99, with where the time goes.

    nice -n 5 python bench/first_read.py --size 1M --db sqlite [--users 300] [--runs 3]
    nice -n 5 python bench/first_read.py --size 10M --shaped   # no services: ranking only

Product mode reads the database and Redis ``bench/scale.py`` left for the size
(``--steps import`` at least; a model is recomputed here when none is published). Each run
deletes the chosen users' stored lists from the live version (the state of a user who
was not active when the recompute ran), then times for each user in turn:

- ``api first``: ``GET /api/v1/me/recommendations/?limit=10`` through Django's WSGI
  handler (no HTTP), which ranks live and keeps the list;
- ``api second``: the same request again (a stored-list read, for comparison);
- ``panel first``: the stored lists deleted again, ``{% people_like_you user %}`` rendered
  (the personal panel, which with the ranking model is the same list).

The same ``--users`` users (``scale._tokens``' draw) every run; ``--runs`` runs, each
figure the median of the runs' figures. Beside each pass's wall p50/p99, this process's
CPU ms a request over the pass (read twice a pass: under load, reading the CPU clock for
every request cost more than it measured). Where the time goes comes from one more pass
of API first reads (the lists deleted again) with the functions a first read calls
wrapped (inclusive wall ms each, mean and p99 a request): the SQL reads, the Redis reads
and write, the slice, each scored component of the ranking model, the standardisation,
the neighbour evidence, the top-n, the reasons.

``--profile`` prints cProfile's view of the first run's API first reads to stderr.
``--shaped`` runs no services: the model's parts and the user-user lists drawn at random
in the stored layout and shapes (``bench/ready_stage.py``'s), and each user's ranking as
the first read computes it without its SQL and Redis (``ModelParts.score`` then
``ranking.rank``), with the same breakdown: the catalogue-sized work at 1M, 10M or 25M
without importing them. ``--slice`` starts only the size's Redis and times the part of a
first read that grows with the user's neighbours (``ranking.model_slice_from_store`` with
its Redis read: their list, their ratings, the user's scores and the neighbour evidence)
for ``--users`` users drawn from the stored user-user lists (their stored ratings as
theirs), each the fastest of three calls: wall and CPU ms, p50/p99, and the tenth of the
users whose neighbours rated the most. Numbers to stdout and
``bench/out/first-read-*.json``.
"""

import argparse
import io
import json
import os
import statistics
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # ready_stage's own imports

OUT = ROOT / "bench" / "out"


class Breakdown:
    """Inclusive wall ms of wrapped functions, per request."""

    def __init__(self):
        self.current: dict[str, float] | None = None
        self.requests: list[dict[str, float]] = []
        self._undo = []

    def wrap(self, owner, attr: str, label: str, *, per_name=False):
        original = getattr(owner, attr)
        record = self._record

        if per_name:  # ModelParts.components: each component timed on its own

            def wrapper(parts, row, names=None):
                if names is None:
                    return original(parts, row, names)
                out = {}
                for name in sorted(names):
                    began = time.perf_counter()
                    out.update(original(parts, row, frozenset({name})))
                    record(f"{label} {name}", began)
                return out
        else:

            def wrapper(*args, **kwargs):
                began = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    record(label, began)

        setattr(owner, attr, wrapper)
        self._undo.append((owner, attr, original))

    def _record(self, label: str, began: float) -> None:
        if self.current is not None:
            elapsed = (time.perf_counter() - began) * 1000
            self.current[label] = self.current.get(label, 0.0) + elapsed

    def start(self) -> None:
        self.current = {}

    def stop(self, total_ms: float, label: str) -> None:
        self.current[label] = total_ms
        self.requests.append(self.current)
        self.current = None

    def summary(self) -> dict:
        """Per label: wall ms a request, mean and p99."""
        labels = sorted({k for r in self.requests for k in r})
        out = {}
        for label in labels:
            values = [r.get(label, 0.0) for r in self.requests]
            out[label] = {"mean_ms": _r(statistics.fmean(values)), "p99_ms": _r(_p(values, 99))}
        return out

    def undo(self) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)
        self._undo = []


def _p(values, q) -> float:
    import numpy as np

    return float(np.percentile(values, q))


def _r(x: float) -> float:
    return round(x, 3)


def instrument(services: bool) -> Breakdown:
    from catalog import selectors as catalog_selectors
    from recommendations import model_scoring, ranking, reads, store

    b = Breakdown()
    # (owner, function, label); a function the measured code lacks is skipped, so the
    # same script measures the code before a change and after it
    service_calls = [
        (store.LiveModel, "ready_list", "redis ready_list"),
        (store.LiveModel, "ready_or_neighbours", "redis ready_list or neighbours"),
        # what reads call since the list's round trip also reads the catalogue generation
        (store.LiveModel, "ready_neighbours_catalogue", "redis ready_list or neighbours"),
        (catalog_selectors, "user_taste_stamp", "sql taste stamp"),
        (reads, "_live_ratings", "sql ratings"),
        (reads, "_hidden", "sql hidden"),
        (ranking, "_inactive_item_ids", "sql inactive items"),
        (ranking, "_unshown_item_ids", "sql hidden and inactive items"),
        (store.LiveModel, "lists_for_user", "redis uu list"),
        (store.LiveModel, "user_ratings", "redis neighbours' ratings"),
        (store.LiveModel, "user_list_and_ratings", "redis uu list and ratings"),
        (ranking, "model_slice_from_store", "slice (with its redis)"),
        (ranking, "slice_from_store", "slice (with its redis)"),
        (ranking, "rank_from_store", "rank_from_store"),
        (store, "ready_put", "redis ready_put"),
        (reads, "_present", "sql cards (present)"),
    ]
    for owner, name, label in service_calls if services else []:
        if hasattr(owner, name):
            b.wrap(owner, name, label)
    b.wrap(model_scoring.ModelParts, "score", "score")
    b.wrap(model_scoring.ModelParts, "user_row", "score: user row")
    b.wrap(model_scoring.ModelParts, "components", "score: component", per_name=True)
    b.wrap(model_scoring.ModelParts, "_als_user", "score: als solve")
    b.wrap(model_scoring, "_standardise", "score: standardise")
    b.wrap(model_scoring.ModelParts, "floor", "score: floor")
    b.wrap(ranking, "rank", "rank")
    b.wrap(ranking, "_neighbour_evidence", "rank: neighbour evidence")
    if hasattr(ranking, "stored_evidence"):  # a first read's, summed from the stored rows
        b.wrap(ranking, "stored_evidence", "slice: neighbour evidence")
    b.wrap(model_scoring, "top_items", "rank: top items")
    b.wrap(model_scoring, "explain_top", "rank: reasons")
    return b


# -- product mode ---------------------------------------------------------------------------
def product(args) -> dict:
    import scale  # bench/scale.py: its data, databases and environment

    pg = scale.Postgres().start() if args.db == "postgres" else None
    redis = None
    try:
        redis_port, redis = _redis(args, scale)
        env = scale._environment(scale._database_url(args.size, args.db, pg), redis_port)
        scale.manage(env, "migrate", "--noinput", "-v0")
        import django

        django.setup()
        scale._ensure_model(env)
        # Kept for the next run (Redis loads its dump at start): the same version, and
        # the same tuned weights, for a measurement before a change and after it.
        scale._redis_client(env).save()
        return _measure(args, scale)
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait()
        if pg is not None:
            pg.stop()


def _redis(args, scale):
    """(port, process) of the size's Redis; started again once when loading its dump took
    longer than ``redis_server.start`` waits (25M's 0.6 GB at load 13: the second start
    reads it from the page cache)."""
    from recsite import redis_server

    for attempt in (1, 2):
        port = redis_server.free_port()
        try:
            return port, redis_server.start(port, scale.WORK / f"redis-{args.size}-{args.db}")
        except RuntimeError:
            if attempt == 2:
                raise


def _measure(args, scale) -> dict:
    from django.contrib.auth import get_user_model
    from django.template import Context, Template

    from recommendations import store
    from recommendations.conf import get as option
    from recsite.wsgi import application

    users = scale._tokens(args.users + args.warmup, min_ratings=option("MIN_RATINGS_FOR_PERSONAL"))
    warm, users = users[: args.warmup], users[args.warmup :]
    people = get_user_model().objects.in_bulk([pk for pk, _ in users])
    panel = Template("{% load recommendation_panels %}{% people_like_you user %}")
    client = store.client()

    def forget(pks) -> None:
        version = store.live_model().version
        client.hdel(store.version_key(version, "ready"), *pks)

    def api(token: str) -> float:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/api/v1/me/recommendations/",
            "QUERY_STRING": "limit=10",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Token {token}",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        status = []
        began = time.perf_counter()
        b"".join(application(environ, lambda s, headers: status.append(s)))
        elapsed = (time.perf_counter() - began) * 1000
        if not status[0].startswith("200"):
            raise SystemExit(f"me/recommendations answered {status[0]}")
        return elapsed

    # warm-up on other users: the model's parts mapped, connections open, code paths run
    forget([pk for pk, _ in warm])
    for _, token in warm:
        api(token)

    def timed(name: str, call) -> list[float]:
        """Wall ms of each user's ``call``, and this process's CPU ms a request over the
        pass (the CPU clock is read twice a pass: read for each request, its system call
        cost a busy machine more than the rest of a request)."""
        began = time.process_time()
        times = [call(pk, token) for pk, token in users]
        cpu[name] = (time.process_time() - began) * 1000 / len(users)
        return times

    def render(pk: int, token: str) -> float:
        context = Context({"user": people[pk]})
        began = time.perf_counter()
        panel.render(context)
        return (time.perf_counter() - began) * 1000

    runs = []
    for run in range(args.runs):
        cpu: dict[str, float] = {}
        sections = {}
        forget([pk for pk, _ in users])
        sections["api first"] = timed("api first", lambda pk, token: api(token))
        sections["api second"] = timed("api second", lambda pk, token: api(token))
        forget([pk for pk, _ in users])
        sections["panel first"] = timed("panel first", render)
        # Where the time goes: another pass of first reads with the functions wrapped
        # (the timings above run without the wrappers).
        forget([pk for pk, _ in users])
        b = instrument(True)
        profile = None
        if args.profile and run == 0:
            import cProfile

            profile = cProfile.Profile()
            profile.enable()
        for _, token in users:
            b.start()
            b.stop(api(token), "total")
        b.undo()
        if profile is not None:
            import pstats

            profile.disable()
            stats = pstats.Stats(profile, stream=sys.stderr).strip_dirs()
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumulative").print_stats(40)
        result = {
            name: {
                "p50_ms": _r(_p(times, 50)),
                "p99_ms": _r(_p(times, 99)),
                "cpu_mean_ms": _r(cpu[name]),
            }
            for name, times in sections.items()
        }
        result["breakdown"] = {"api first": b.summary()}
        runs.append(result)
        print(json.dumps({"run": run + 1, **{k: result[k] for k in sections}}), flush=True)
    return {"runs": runs, "users": len(users)}


# -- shaped mode (no services) ---------------------------------------------------------------
def shaped(args) -> dict:
    import numpy as np

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    import ready_stage

    from recommendations import build, model_scoring
    from recommendations.conf import get as option

    matrix, active, info = ready_stage._synthetic(args.size)
    rng = np.random.default_rng(2)
    parts = model_scoring.ModelParts(ready_stage._shaped_parts(matrix, active, info, rng))
    uu = ready_stage._shaped_neighbours(matrix.n_users, option("USER_K"), rng)

    inputs = types.SimpleNamespace(matrix=matrix)
    lists = build.ListInputs(
        item_lists=None,
        user_lists=uu,
        stamps={int(u): "s" for u in matrix.user_ids},
        hidden={},
        inactive=np.empty(0, np.int64),
        hidden_ids={},
        inactive_ids=active[rng.choice(active.size, 3, replace=False)],
    )
    csr = matrix.csr
    chosen = np.random.default_rng(0).choice(matrix.n_users, args.users + args.warmup, False)
    runs = []
    for run in range(args.runs):
        b = instrument(False)
        times = []
        cpu = 0.0
        for at, u in enumerate(chosen.tolist()):
            if at == args.warmup:
                cpu = time.process_time()
            measured = at >= args.warmup
            if measured:
                b.start()
            began = time.perf_counter()
            lo, hi = csr.indptr[u], csr.indptr[u + 1]
            scored = parts.score(matrix.item_ids[csr.indices[lo:hi]], csr.data[lo:hi])
            build._ready_list(inputs, lists, u, scored)
            ms = (time.perf_counter() - began) * 1000
            if measured:
                b.stop(ms, "total")
                times.append(ms)
        cpu = (time.process_time() - cpu) * 1000 / len(times)
        b.undo()
        result = {
            "ranking": {"p50_ms": _r(_p(times, 50)), "p99_ms": _r(_p(times, 99))}
            | {"cpu_mean_ms": _r(cpu)}
        }
        result["breakdown"] = {"ranking": b.summary()}
        runs.append(result)
        print(json.dumps({"run": run + 1, "ranking": result["ranking"]}), flush=True)
    return {
        "runs": runs,
        "users": args.users,
        "items": parts.n_items,
        "users_total": int(matrix.n_users),
        "ratings": int(matrix.nnz),
    }


# -- slice mode (Redis only) ----------------------------------------------------------------
def slice_only(args) -> dict:
    import numpy as np
    import scale

    port, redis = _redis(args, scale)
    try:
        scale._environment("sqlite:///:memory:", port)  # no database is read
        import django

        django.setup()
        from recommendations import model_scoring, ranking, store

        model = store.live_model()
        parts = model_scoring.parts_for(model.version)
        r = store.client()
        # sorted: a hash's order differs between Redis processes (a seeded hash)
        users = sorted(int(u) for u in r.hkeys(store.version_key(model.version, "uu")))
        chosen = np.random.default_rng(0).choice(users, args.users + args.warmup, False)
        runs = []
        for run in range(args.runs):
            rows = []
            for at, u in enumerate(chosen.tolist()):
                own = store.decode_ratings(r.hget(store.version_key(model.version, "ur"), u))
                if own is None or own.size < 5:
                    continue
                rated = own["item"].astype(np.int64)
                scores = own["score"].astype(np.float64)
                best = (np.inf, np.inf)
                for _ in range(3):
                    cpu, began = time.process_time(), time.perf_counter()
                    sl = ranking.model_slice_from_store(model, parts, u, rated, scores)
                    wall = (time.perf_counter() - began) * 1000
                    best = min(best, (wall, (time.process_time() - cpu) * 1000))
                if at >= args.warmup:
                    rows.append((*best, float(sl.evidence[0].sum())))
            wall, cpu, n = (np.array(c) for c in zip(*rows, strict=True))
            heavy = n >= np.percentile(n, 90)
            result = {
                "slice": {
                    "p50_ms": _r(_p(wall, 50)),
                    "p99_ms": _r(_p(wall, 99)),
                    "cpu_mean_ms": _r(cpu.mean()),
                    "cpu_p99_ms": _r(_p(cpu, 99)),
                },
                "slice, heaviest tenth": {
                    "p50_ms": _r(_p(wall[heavy], 50)),
                    "p99_ms": _r(_p(wall[heavy], 99)),
                    "cpu_mean_ms": _r(cpu[heavy].mean()),
                    "cpu_p99_ms": _r(_p(cpu[heavy], 99)),
                    "neighbour_ratings_from": int(n[heavy].min()),
                },
                "breakdown": {},
            }
            runs.append(result)
            print(json.dumps({"run": run + 1, **result}), flush=True)
        return {"runs": runs, "users": len(rows)}
    finally:
        redis.terminate()
        redis.wait()


# -- report ---------------------------------------------------------------------------------
def medians(runs: list[dict]) -> dict:
    """Each figure the median over the runs."""
    out = {}
    for name in runs[0]:
        if name == "breakdown":
            continue
        out[name] = {k: _r(statistics.median(r[name][k] for r in runs)) for k in runs[0][name]}
    out["breakdown"] = {}
    for section, labels in runs[0]["breakdown"].items():
        out["breakdown"][section] = {
            label: {
                k: _r(statistics.median(r["breakdown"][section][label][k] for r in runs))
                for k in ("mean_ms", "p99_ms")
            }
            for label in labels
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1M")
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shaped", action="store_true", help="no services: ranking only")
    parser.add_argument("--slice", action="store_true", help="Redis only: the neighbour slice")
    parser.add_argument("--label", default="", help="suffix of the JSON file (e.g. before)")
    parser.add_argument("--profile", action="store_true", help="cProfile run 1's first reads")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "bench"))
    from conditions import LoadSampler, git_commit, product_commit

    began = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with LoadSampler() as load:
        run = shaped if args.shaped else slice_only if args.slice else product
        result = run(args)
    result |= medians(result["runs"])
    mode = "shaped" if args.shaped else args.db + ("-slice" if args.slice else "")
    command = f"python bench/first_read.py --size {args.size} " + (
        "--shaped" if args.shaped else f"--db {args.db}" + (" --slice" if args.slice else "")
    )
    result |= {
        "size": args.size,
        "mode": mode,
        "measured_at": began,
        "load_average": load.summary(),
        "commit": git_commit(),
        "product_commit": product_commit(),
        "code": sys.modules["recommendations.ranking"].__file__,
        "command": command + f" --users {args.users} --runs {args.runs}",
    }
    OUT.mkdir(parents=True, exist_ok=True)
    name = f"first-read-{args.size}-{mode}{'-' + args.label if args.label else ''}.json"
    (OUT / name).write_text(json.dumps(result, indent=1))
    print(table(result))


def table(result: dict) -> str:
    lines = [f"{result['command']}  (load {result['load_average']}, {result['commit']})"]
    for name, v in result.items():
        if isinstance(v, dict) and "p50_ms" in v:
            lines.append(
                f"{name:>12}: p50 {v['p50_ms']:8.2f}  p99 {v['p99_ms']:8.2f} ms"
                f"  (CPU {v.get('cpu_mean_ms', float('nan')):.2f} ms a request"
                + (f", p99 {v['cpu_p99_ms']:.2f})" if "cpu_p99_ms" in v else ")")
            )
    for section, labels in result["breakdown"].items():
        lines.append(f"-- {section}: inclusive wall ms a request, mean / p99 (medians of the runs)")
        for label, v in sorted(labels.items(), key=lambda kv: -kv[1]["mean_ms"]):
            lines.append(f"   {label:<32} {v['mean_ms']:8.3f} {v['p99_ms']:8.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
