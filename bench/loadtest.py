"""Load test of the JSON API: personal recommendations against the trivial endpoint.

    python bench/loadtest.py [--users 10000] [--items 5000] [--duration 15] [--connections 16]
    python bench/loadtest.py --reuse-model   # the model an earlier run published, no recompute
    LOADTEST_DATABASE_URL=postgres://... python bench/loadtest.py   # another database

Builds (once, then reused from var/loadtest/) a SQLite catalogue with ``seed_demo``, starts
a private Redis, publishes a neighbour model with ``manage.py recompute``, serves the
product with gunicorn on 127.0.0.1 (DEBUG off, throttling off), then drives it with wrk
for a bounded time at 16 connections:

- ``GET /api/v1/health/`` (database + Redis + model version): the ceiling;
- ``GET /api/v1/me/recommendations/`` as many different users (a token per request,
  picked at random from every user with enough ratings for personal suggestions), each
  of whom has a stored list: the in-process step reads every user's list once first
  (``--warm-all``) and the Redis dump keeps them for ``--reuse-model``.

The two endpoints are driven in turn, ``--repeat`` times (3 by default), and each figure
is the median of its runs, so a burst of other work on the machine skews one run, not the
result. Both are also timed in-process (``bench/api_inprocess.py``: Django without HTTP)
and at one connection. Prints requests/s and p50/p99 latency for each, their ratio, and
checks every response was a 2xx. Numbers also go to bench/out/loadtest.json. Only loopback is ever
targeted.
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.conditions import LoadSampler, git_commit, product_commit  # noqa: E402

sys.path.insert(0, str(ROOT))
WORK = ROOT / "var" / "loadtest"
OUT = ROOT / "bench" / "out"
HOST = "127.0.0.1"

WRK_SCRIPT = """
local tokens = {}
for line in io.lines("%(tokens)s") do tokens[#tokens + 1] = line end
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  local token = tokens[math.random(#tokens)]
  return wrk.format("GET", "%(path)s", {["Authorization"] = "Token " .. token})
end
"""


def environment(database_url: str, redis_port: int, workers: int) -> dict:
    """The site's environment for a load test or benchmark: DEBUG off, throttling off."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "recsite.settings.base",
        "DEBUG": "0",
        "SECRET_KEY": "loadtest-only-not-a-secret",
        "ALLOWED_HOSTS": HOST,
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_HSTS_SECONDS": "0",
        "DATABASE_URL": database_url,
        "REDIS_URL": f"redis://{HOST}:{redis_port}/0",
        "RECOMPUTE_ON_WORKER_START": "0",
        "API_THROTTLE_ANON": "off",
        "API_THROTTLE_USER": "off",
        "LOG_LEVEL": "WARNING",
        "WEB_CONCURRENCY": str(workers),
    }


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def prepare_catalogue(env: dict, db: Path, users: int, items: int) -> bool:
    """Seed the catalogue unless the one there was made with these sizes; whether it was
    reused."""
    if not env["DATABASE_URL"].startswith("sqlite:"):
        # A database of the caller's (LOADTEST_DATABASE_URL): seeded once, when empty.
        manage(env, "migrate", "--noinput")
        out = manage(env, "seed_demo", "--if-empty", "--users", str(users), "--items", str(items))
        print(out.splitlines()[0], flush=True)
        return False
    marker = db.with_suffix(".json")
    wanted = {"users": users, "items": items}
    if db.exists() and marker.exists() and json.loads(marker.read_text()) == wanted:
        print(f"Reusing the catalogue in {db} ({users} users, {items} items).", flush=True)
        manage(env, "migrate", "--noinput")
        return True
    for path in db.parent.glob(db.name + "*"):
        path.unlink()
    marker.unlink(missing_ok=True)
    started = time.monotonic()
    manage(env, "migrate", "--noinput")
    print(manage(env, "seed_demo", "--users", str(users), "--items", str(items)).splitlines()[0])
    print(f"  seeded in {time.monotonic() - started:.0f} s", flush=True)
    marker.write_text(json.dumps(wanted))
    return False


def publish_model(env: dict, redis_port: int, *, reuse: bool) -> None:
    """A published model in the private Redis: with ``reuse``, the one an earlier run left
    in its dump (``var/loadtest/redis/dump.rdb``, loaded when Redis starts), else a full
    recompute (minutes: the ranking model tunes its weights), saved to that dump."""
    import redis

    client = redis.Redis(host=HOST, port=redis_port)
    if reuse and client.get("rec:live") is not None:
        print("Reusing the model published by an earlier run (--reuse-model).", flush=True)
        return
    client.flushall()
    started = time.monotonic()
    print(manage(env, "recompute", "--verbosity", "0").strip())
    print(f"  recompute took {time.monotonic() - started:.0f} s", flush=True)
    client.save()


TOKENS_CODE = """
import django, sys
django.setup()
from django.db.models import Count
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from recommendations.conf import get
users = (get_user_model().objects.annotate(n=Count("ratings"))
         .filter(n__gte=get("MIN_RATINGS_FOR_PERSONAL")).order_by("pk")[: int(sys.argv[1])])
for user in users:
    print(Token.objects.get_or_create(user=user)[0].key)
"""


def tokens_file(env: dict, limit: int) -> Path:
    result = subprocess.run(
        [sys.executable, "-c", TOKENS_CODE, str(limit)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    path = WORK / "tokens.txt"
    path.write_text(result.stdout)
    return path


def wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def parse_wrk(output: str) -> dict:
    def seconds(value: str, unit: str) -> float:
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", output, re.M))
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}
    for pct, text in latency.items():
        value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
        result[f"p{pct}_ms"] = seconds(value, unit)
    result["requests"] = int(re.search(r"(\d+) requests in", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = int(errors.group(1)) if errors else 0
    socket_errors = re.search(r"Socket errors: (.*)", output)
    result["socket_errors"] = socket_errors.group(1) if socket_errors else ""
    return result


def run_wrk(url: str, *, duration: int, connections: int, script: Path | None) -> dict:
    threads = min(2, connections)
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    args += ["--timeout", "5s"]
    if script is not None:
        args += ["-s", str(script)]
    output = subprocess.run(
        [*args, url], capture_output=True, text=True, check=True, timeout=duration + 30
    ).stdout
    return parse_wrk(output)


def server_cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system, s) used so far by these processes and their children
    that are alive (the gunicorn master's workers, Redis): read from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    wanted, total = set(pids), 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid in wanted or ppid in wanted:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def _cpu_per_request(before: float, after: float, requests: int) -> float | None:
    """Server CPU ms per answered request: what the server's 2 cores cap the rate at,
    whatever else the machine runs (a busy machine lowers req/s, much less this)."""
    return round((after - before) * 1000 / requests, 3) if requests else None


# Open loop: each hey worker's pace at most (requests a second), and hey processes at most.
PER_WORKER = 20
OPEN_PROCESSES = 16


def run_open_loop(url: str, *, rate: float, duration: int, tokens: list[str]) -> dict:
    """Offer ``rate`` requests a second for ``duration`` s with Debian's ``hey``, whatever
    the answers' speed (open loop), in ``hey`` processes each sending its own user's token.
    Latency percentiles are over every request of every process (``-o csv``).

    Each ``hey`` worker waits for its answer before its next request and is paced by its
    own ticker (``-q``); a process's tickers start together, so its workers fire in one
    burst a tick. With 156 workers paced at 5 a second (the first version) every 200 ms
    brought 156 requests at once, and even ``health/`` measured 31 ms p50 at a quarter of
    its capacity: the bursts' queue, not the endpoint. Now each worker is paced at up to
    ``PER_WORKER`` a second (an answer up to 1/PER_WORKER s still keeps the offered rate),
    the workers are spread over up to ``OPEN_PROCESSES`` processes, and the processes start
    evenly over one tick, so the bursts are small and evenly spaced.
    """
    processes = min(OPEN_PROCESSES, len(tokens), max(1, -(-int(rate) // PER_WORKER)))
    workers = max(processes, -(-int(rate) // PER_WORKER))
    workers += -workers % processes  # a whole number of workers per process
    per_worker = rate / workers
    commands = [
        ["hey", "-z", f"{duration}s", "-c", str(workers // processes), "-q", f"{per_worker:.4f}",
         "-t", "5", "-o", "csv", "-H", f"Authorization: Token {token}", url]
        for token in tokens[:processes]
    ]  # fmt: skip
    procs = []
    started = time.monotonic()
    for n, command in enumerate(commands):
        time.sleep(max(0.0, started + n / (per_worker * processes) - time.monotonic()))
        procs.append(
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    latencies, statuses = [], {}
    for proc in procs:
        out, _ = proc.communicate(timeout=duration + 60)
        for line in out.splitlines()[1:]:
            fields = line.split(",")
            if len(fields) < 8:
                continue
            latencies.append(float(fields[0]) * 1000)
            statuses[fields[6]] = statuses.get(fields[6], 0) + 1
    latencies.sort()
    done = len(latencies)
    non_2xx = sum(n for code, n in statuses.items() if not code.startswith("2"))
    return {
        "offered_rps": round(rate, 1),
        "achieved_rps": round(done / duration, 1),
        "requests": done,
        "p50_ms": round(latencies[done // 2], 2) if done else None,
        "p99_ms": round(latencies[min(done - 1, int(0.99 * done))], 2) if done else None,
        "non_2xx": non_2xx,
        # hey's CSV lists answered requests only: what was offered and never answered
        # (connection errors, time-outs, answers still due at the end, or a rate the
        # workers could not keep because answers took longer than their pacing).
        "unanswered": max(0, round(rate * duration) - done),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per worker (more than 1: gthread)"
    )
    parser.add_argument("--tokens", type=int, default=5000, help="distinct users driven")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each endpoint (median)")
    parser.add_argument(
        "--open-loop",
        default="25,50,75",
        help="offered rates for hey, in %% of health's measured capacity (empty: skip)",
    )
    parser.add_argument("--open-duration", type=int, default=15, help="seconds per hey run")
    parser.add_argument(
        "--reuse-model",
        action="store_true",
        help="serve the model the last run published (kept in var/loadtest/redis) instead "
        "of recomputing it, when the catalogue is reused too",
    )
    options = parser.parse_args()

    import redis

    from recsite import redis_server

    WORK.mkdir(parents=True, exist_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    db = WORK / "db.sqlite3"
    redis_port, web_port = redis_server.free_port(), redis_server.free_port()
    database_url = os.environ.get("LOADTEST_DATABASE_URL") or f"sqlite:///{db}"
    env = environment(database_url, redis_port, options.workers)
    procs: list[subprocess.Popen] = []
    try:
        procs.append(redis_server.start(redis_port, WORK / "redis"))
        reused = prepare_catalogue(env, db, options.users, options.items)
        publish_model(env, redis_port, reuse=options.reuse_model and reused)
        tokens = tokens_file(env, options.tokens)
        n_tokens = len(tokens.read_text().split())
        script = WORK / "recommendations.lua"
        path = "/api/v1/me/recommendations/?limit=10"
        script.write_text(WRK_SCRIPT % {"tokens": tokens, "path": path})

        # The server's own work per request, before any HTTP: Django called in-process.
        # --warm-all first reads every driven user's list once, so each has a stored list
        # (the recompute stores lists only for recent readers: seed_demo's users have none)
        # and every figure below is of stored-list reads, not first reads.
        inprocess = [
            json.loads(line)
            for line in subprocess.run(
                [
                    sys.executable,
                    "bench/api_inprocess.py",
                    str(tokens),
                    "/api/v1/health/",
                    path,
                    "--warm-all",
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.splitlines()
        ]
        # Keep the stored lists in the dump, so a run with --reuse-model starts warm.
        redis.Redis(host=HOST, port=redis_port).save()

        gunicorn = [
            str(Path(sys.executable).parent / "gunicorn"),
            "recsite.wsgi:application",
            "--bind", f"{HOST}:{web_port}",
            "--workers", str(options.workers),
            "--threads", str(options.threads),
            "--log-level", "warning",
        ]  # fmt: skip
        web = subprocess.Popen(gunicorn, cwd=ROOT, env=env, start_new_session=True)
        procs.append(web)
        base = f"http://{HOST}:{web_port}"
        wait_for(f"{base}/api/v1/health/")
        health = json.load(urllib.request.urlopen(f"{base}/api/v1/health/"))
        print(f"gunicorn: {options.workers} workers on {base}; health: {health}", flush=True)

        # Warm-up: imports, numba kernels, connection pools in every worker.
        for url, lua in [(f"{base}/api/v1/health/", None), (f"{base}{path}", script)]:
            run_wrk(url, duration=3, connections=options.connections, script=lua)

        endpoints = {
            "health": (f"{base}/api/v1/health/", None),
            "recommendations": (f"{base}{path}", script),
        }
        runs: dict[str, list[dict]] = {name: [] for name in endpoints}
        server = [procs[0].pid, web.pid]  # Redis, the gunicorn master (and its workers)
        for _ in range(options.repeat):
            for name, (url, lua) in endpoints.items():
                # Other work on the machine skews every number: say how busy it was.
                load_before = os.getloadavg()[0]
                cpu_before = server_cpu_seconds(server)
                run = run_wrk(
                    url, duration=options.duration, connections=options.connections, script=lua
                )
                cpu = _cpu_per_request(cpu_before, server_cpu_seconds(server), run["requests"])
                runs[name].append({**run, "load_before": load_before, "cpu_ms": cpu})
        results = {name: _median_run(these) for name, these in runs.items()}
        # One connection: the time a request takes when it does not queue behind others.
        alone = {
            name: run_wrk(url, duration=5, connections=1, script=lua)
            for name, (url, lua) in endpoints.items()
        }
        # Open loop: fixed offered rates, a share of the trivial endpoint's capacity.
        capacity = results["health"]["rps"]
        token_list = tokens.read_text().split()
        open_loop = []
        for share in [int(x) for x in options.open_loop.split(",") if x]:
            for name, (url, _) in endpoints.items():
                cpu_before = server_cpu_seconds(server)
                with LoadSampler(every=2) as load:
                    run = run_open_loop(
                        url,
                        rate=capacity * share / 100,
                        duration=options.open_duration,
                        tokens=token_list,
                    )
                run["cpu_ms"] = _cpu_per_request(
                    cpu_before, server_cpu_seconds(server), run["requests"]
                )
                open_loop.append({"endpoint": name, "share": share, **run, "load": load.summary()})
        sample = urllib.request.Request(
            f"{base}{path}",
            headers={"Authorization": f"Token {tokens.read_text().split()[0]}"},
        )
        source = json.load(urllib.request.urlopen(sample))["source"]
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()

    ratio = results["recommendations"]["rps"] / results["health"]["rps"]
    commit = git_commit()
    print()
    print(f"commit {commit} (product code {product_commit()}); {' '.join(sys.argv)}")
    print(
        f"median of {options.repeat} runs each, "
        f"wrk -t2 -c{options.connections} -d{options.duration}s, gunicorn {options.workers} "
        f"workers, {options.users} users / {options.items} items, {n_tokens} distinct users "
        f"(sample answer source: {source})"
    )
    header = ("endpoint", "req/s", "p50 ms", "p99 ms", "requests", "non-2xx", "load 1m", "cpu ms")
    print(f"{header[0]:<18}" + "".join(f"{h:>10}" for h in header[1:]))
    for name, r in results.items():
        print(
            f"{name:<18}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
            f"{r['requests']:>10}{r['non_2xx']:>10}{r['load_before']:>10.1f}{r['cpu_ms']:>10.3f}"
        )
    cpu_ratio = results["health"]["cpu_ms"] / results["recommendations"]["cpu_ms"]
    print(
        "cpu ms: the server's CPU (gunicorn workers and Redis) per request under wrk; "
        f"health's / recommendations': {cpu_ratio:.0%}, the capacity ratio if the server's "
        "CPU were all that limits it"
    )
    for name, r in alone.items():
        print(
            f"{name} at 1 connection: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, "
            f"p99 {r['p99_ms']:.2f} ms"
        )
    for r in inprocess:
        print(
            f"in-process {r['path']}: median {r['median_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms "
            f"({r['requests']} requests, no HTTP)"
        )
    if open_loop:
        print()
        print(
            f"open loop (hey, {options.open_duration} s a run): offered rates as a share of "
            f"health's {capacity:.0f} req/s"
        )
        header = (
            "endpoint",
            "share",
            "offered",
            "achieved",
            "p50 ms",
            "p99 ms",
            "non-2xx",
            "unanswered",
            "load",
            "cpu ms",
        )
        print(f"{header[0]:<18}" + "".join(f"{h:>11}" for h in header[1:]))
        for r in open_loop:
            print(
                f"{r['endpoint']:<18}{r['share']:>10}%{r['offered_rps']:>11.0f}"
                f"{r['achieved_rps']:>11.0f}{r['p50_ms'] or 0:>11.2f}{r['p99_ms'] or 0:>11.2f}"
                f"{r['non_2xx']:>11}{r['unanswered']:>11}{r['load']['mean']:>11.1f}"
                f"{r['cpu_ms'] or 0:>11.3f}"
            )
    p99 = results["recommendations"]["p99_ms"]
    print(f"ratio recommendations/health: {ratio:.0%} (target >= 50%); p99 {p99:.1f} ms (< 15)")
    report = {
        "commit": commit,
        "product_commit": product_commit(),
        "command": " ".join(sys.argv),
        "options": vars(options),
        "distinct_users": n_tokens,
        "results": results,
        "runs": runs,
        "one_connection": alone,
        "in_process": inprocess,
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "source": source,
        "open_loop": open_loop,
    }
    (OUT / "loadtest.json").write_text(json.dumps(report, indent=2))
    if any(r["non_2xx"] or r["socket_errors"] for r in [*results.values(), *alone.values()]) or any(
        r["non_2xx"] for r in open_loop
    ):
        raise SystemExit("some requests failed (non-2xx or socket errors)")


def _median_run(runs: list[dict]) -> dict:
    """Each figure's median over the runs; counts of requests and failures are summed."""
    out = {
        key: statistics.median(run[key] for run in runs)
        for key in ("rps", "p50_ms", "p99_ms", "load_before", "cpu_ms")
    }
    out["requests"] = sum(run["requests"] for run in runs)
    out["non_2xx"] = sum(run["non_2xx"] for run in runs)
    out["socket_errors"] = "; ".join(run["socket_errors"] for run in runs if run["socket_errors"])
    return out


if __name__ == "__main__":
    main()
