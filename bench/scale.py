"""The whole product at real size: import, full recompute, a stream of ratings, reads.

    python bench/scale.py [--sizes 1M,10M] [--db sqlite,postgres] [--force]
    python bench/scale.py --sizes 25M --db postgres --steps import,recompute

For each size (synthetic MovieLens-shaped ratings from ``recommendations.engine.synthetic``,
written once to ``var/scale/SIZE.csv``) and each database (a SQLite file in ``var/scale/``,
or a private PostgreSQL server started here on a loopback port), on real services:

- ``import``: ``manage.py import_ratings`` into an empty database, next to the database's
  own bulk load of the same file (``sqlite3 .import``; PostgreSQL ``COPY`` through psql's
  ``\\copy``) into a table without indexes; meanwhile a probe rates through the site's
  service every 0.1 s and times each write (how long the site's writes wait for the import);
- ``recompute``: a full recompute on 1, then 2 worker processes (real ``celery worker``
  subprocesses): wall time from queueing to publish, each worker's peak RSS (VmHWM of every
  process of the worker), Redis memory of the published version (``MEMORY USAGE`` of its keys);
- ``stream``: gunicorn on loopback and a worker with 2 processes; ratings through
  ``PUT /api/v1/me/ratings/{id}/`` at 20 a second for 60 s from many users, offered on a
  fixed schedule (open loop); every 10th rating is followed by polling that user's
  ``me/similar-users/`` until it changes (rating-to-panel freshness); the update task's
  time from the worker's log; the Celery queue's depth sampled every 0.5 s;
- ``reads``: p50/p99 of every panel (rendered in-process by its template tag) and every API
  list (``bench/api_inprocess.py``: Django's WSGI handler without HTTP).

Each (size, database, step) result is saved to ``bench/out/scale.json`` as soon as it is
measured and skipped when the command runs again (``--force`` measures it again), so a long
25M run can be stopped and resumed. A table is printed at the end.
"""

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.conditions import LoadSampler, git_commit, product_commit  # noqa: E402
from bench.loadtest import HOST, environment, manage  # noqa: E402
from bench.pipeline import _timed_recompute, _worker  # noqa: E402

WORK = ROOT / "var" / "scale"
OUT = ROOT / "bench" / "out"
RESULTS = OUT / "scale.json"
STEPS = ("import", "recompute", "stream", "reads")
NAMESPACE = "syn"


# --- data -------------------------------------------------------------------------------


def ratings_csv(size: str) -> Path:
    """The size's synthetic ratings as ``user,item,rating,timestamp``, written once."""
    import numpy as np

    from recommendations.engine.synthetic import SIZES, generate

    path = WORK / f"{size}.csv"
    if path.exists():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    users, items, scores = generate(*SIZES[size], seed=0)
    # Times spread over 2000-2019, in no particular order, as MovieLens' are.
    stamps = 946_684_800 + np.random.default_rng(1).integers(0, 600_000_000, users.size)
    partial = path.with_suffix(".partial")
    with partial.open("w") as handle:
        handle.write("user,item,rating,timestamp\n")
        step = 1_000_000
        for start in range(0, users.size, step):
            rows = zip(
                users[start : start + step].tolist(),
                items[start : start + step].tolist(),
                scores[start : start + step].tolist(),
                stamps[start : start + step].tolist(),
                strict=True,
            )
            handle.write("".join(f"{u},{i},{s:g},{t}\n" for u, i, s, t in rows))
    partial.rename(path)
    return path


# --- databases --------------------------------------------------------------------------


class Postgres:
    """A private PostgreSQL server on a free loopback port, files in var/scale/pg.

    It refuses to run as root, so as root it runs as the ``postgres`` user (as .ci/run)."""

    def __init__(self):
        self.bin = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name)
        if not self.bin:
            raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = self.bin[-1]
        self.dir = WORK / "pg"
        from recsite.redis_server import free_port

        self.port = free_port()

    def _run(self, *args) -> subprocess.CompletedProcess:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True)

    def start(self) -> "Postgres":
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        if not (self.dir / "data").exists():
            self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres")
        elif (self.dir / "data" / "postmaster.pid").exists():
            # Left running by a run that was killed: resuming starts it on a new port.
            # (Not running after all: a stale pid file, which starting replaces.)
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop()
        self._run(
            "pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w",
            "-o", f"-p {self.port} -k {self.dir} -c listen_addresses={HOST}", "start",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "stop")

    def url(self, name: str) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{name}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        return subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", self.url(database), "-c", sql],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip


def _database_url(size: str, db: str, pg: Postgres | None) -> str:
    if db == "sqlite":
        return f"sqlite:///{WORK / f'{size}.sqlite3'}"
    return pg.url(f"scale_{size.lower()}")


def _environment(url: str, redis_port: int) -> dict:
    """The load test's environment (DEBUG off, throttling off), also for this process."""
    env = environment(url, redis_port, workers=2)
    os.environ.update(env)
    return env


# --- conditions -------------------------------------------------------------------------


def progress(text: str) -> None:
    """Tell the parent's progress bar what a child step is doing now."""
    print(json.dumps({"progress": text}), flush=True)


# --- steps ------------------------------------------------------------------------------


def step_import(size: str, db: str, env: dict, pg: Postgres | None) -> dict:
    """Import into an empty database; then the database's own bulk load of the same file."""
    csv = ratings_csv(size)
    # A model of the database being replaced must not serve the new one (the Redis of this
    # size and database keeps its data between runs: see run_child).
    _redis_client(env).flushall()
    if db == "sqlite":
        target = WORK / f"{size}.sqlite3"
        for path in WORK.glob(f"{size}.sqlite3*"):
            path.unlink()
    else:
        name = f"scale_{size.lower()}"
        pg.psql(f"DROP DATABASE IF EXISTS {name}")
        pg.psql(f"CREATE DATABASE {name}")
    progress("migrate")
    manage(env, "migrate", "--noinput", "-v0")
    progress("import_ratings")
    import django

    django.setup()
    probe = _WriteProbe()
    # CPU seconds beside wall time: on a shared machine the wall clock also counts waiting.
    cpu = _children_cpu()
    started = time.perf_counter()
    out = _import_probed(env, csv, probe)
    seconds = time.perf_counter() - started
    import_cpu = _children_cpu() - cpu

    progress("bulk load")
    # (The indexed insert, minutes at 25M, measures the database alone: --no-indexed-insert
    # leaves it out of a run that compares import code.)
    indexed_insert = IMPORT_OPTIONS["indexed_insert"]
    cpu = _children_cpu()
    started = time.perf_counter()
    # The same rows into a bare table (the bulk load), then from there into a table with
    # the live ratings table's indexes in one statement: what those indexes cost the
    # database itself, whoever loads the rows.
    indexed_sql = (
        "CREATE TABLE r (id {pk}, user_id bigint NOT NULL, item_id bigint NOT NULL, score "
        "double precision NOT NULL, created {ts} NOT NULL, updated {ts} NOT NULL, "
        "UNIQUE (user_id, item_id));\n"
        "CREATE INDEX r_user ON r (user_id, updated DESC);\n"
        "INSERT INTO r (user_id, item_id, score, created, updated) "
        "SELECT u, i, rating, {when}, {when} FROM t;\n"
    )
    # The product's indexes built on the bulk-loaded table: the database's own fastest way
    # to the table the product needs (bar its id), to set the import beside as well.
    index_sql = (
        "CREATE UNIQUE INDEX t_user_item ON t (u, i);\n"
        "CREATE INDEX t_user_recent ON t (u, ts DESC);\n"
    )
    if db == "sqlite":
        target = WORK / "bulk-baseline.sqlite3"
        target.unlink(missing_ok=True)
        script = (
            "CREATE TABLE t (u INTEGER, i INTEGER, rating REAL, ts INTEGER);\n"
            f".import --csv --skip 1 {csv} t\n"
        )
        subprocess.run(["sqlite3", str(target)], input=script, text=True, check=True)
        baseline = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run(["sqlite3", str(target)], input=index_sql, text=True, check=True)
        index_seconds = time.perf_counter() - started
        started, indexed_seconds = time.perf_counter(), None
        indexed = indexed_sql.format(
            pk="INTEGER PRIMARY KEY", ts="datetime", when="datetime(ts, 'unixepoch')"
        )
        if indexed_insert:
            subprocess.run(["sqlite3", str(target)], input=indexed, text=True, check=True)
            indexed_seconds = time.perf_counter() - started
        target.unlink()
        tool = "sqlite3 .import"
    else:
        pg.psql("DROP DATABASE IF EXISTS bulk_baseline")
        pg.psql("CREATE DATABASE bulk_baseline")
        pg.psql("CREATE TABLE t (u integer, i integer, rating real, ts bigint)", "bulk_baseline")
        started = time.perf_counter()
        pg.psql(f"\\copy t FROM '{csv}' WITH (FORMAT csv, HEADER true)", "bulk_baseline")
        baseline = time.perf_counter() - started
        started = time.perf_counter()
        pg.psql(index_sql, "bulk_baseline")
        index_seconds = time.perf_counter() - started
        started, indexed_seconds = time.perf_counter(), None
        indexed = indexed_sql.format(
            pk="bigserial PRIMARY KEY", ts="timestamptz", when="to_timestamp(ts)"
        )
        if indexed_insert:
            pg.psql(indexed, "bulk_baseline")
            indexed_seconds = time.perf_counter() - started
        pg.psql("DROP DATABASE bulk_baseline")
        tool = "COPY (psql \\copy)"
    baseline_cpu = _children_cpu() - cpu
    return {
        "import_seconds": round(seconds, 1),
        "import_cpu_seconds": round(import_cpu, 1),
        "bulk_load_seconds": round(baseline, 1),
        "bulk_load_tool": tool,
        "ratio": round(seconds / baseline, 2),
        "bulk_load_index_seconds": round(index_seconds, 1),
        "ratio_to_bulk_load_and_indexes": round(seconds / (baseline + index_seconds), 2),
        "indexed_insert_seconds": None if indexed_seconds is None else round(indexed_seconds, 1),
        "client_cpu_seconds_of_both": round(baseline_cpu, 1),
        "output": "\n".join(line for line in out.splitlines() if not line.startswith("Phase ")),
        "site_writes": probe.summary(),
    }


class _WriteProbe(threading.Thread):
    """The site rating while the import runs: from the end of the import's "items and
    users" phase (the file's items exist) to its end, one rating every ``every`` seconds
    by one user of its own (not in the file) through ``catalog.services.rating_upsert``
    on this process's own connection, each timed: how long the site's writes wait for
    the import (SQLite's busy timeout, PostgreSQL's lock waits) and whether any fails."""

    def __init__(self, every: float = 0.1):
        super().__init__(name="import-write-probe", daemon=True)
        self.every, self.phase = every, "items and users"
        self.go, self.done = threading.Event(), threading.Event()
        self.writes: list[tuple[float, str, str | None]] = []  # (seconds, phase, error)
        from django.contrib.auth import get_user_model

        self.user = get_user_model().objects.get_or_create(username="probe-writer")[0]

    def run(self) -> None:
        from django.db import connection

        from catalog.models import Item
        from catalog.services import rating_upsert

        rng = random.Random(10)
        try:
            self.go.wait()
            items = list(Item.objects.filter(external_id__startswith=f"{NAMESPACE}:")[:1000])
            while items and not self.done.is_set():
                item, score = rng.choice(items), rng.randrange(1, 11) / 2
                phase, error = self.phase, None
                began = time.perf_counter()
                try:
                    rating_upsert(user=self.user, item=item, score=score)
                except Exception as failure:  # noqa: BLE001 - counted and shown
                    error = f"{type(failure).__name__}: {failure}"[:300]
                self.writes.append((time.perf_counter() - began, phase, error))
                self.done.wait(self.every)
        finally:
            connection.close()

    def summary(self) -> dict:
        """The writes' count, wait p50/p99/max (ms), the phase (the last one ended
        before the write began) of the longest, how many waited over 1 s, the errors."""
        waits = [w for w, _, _ in self.writes]
        errors = [e for _, _, e in self.writes if e]
        worst = max(self.writes, default=(None, None, None))
        per_phase = {}
        for wait, phase, _ in self.writes:
            per_phase[phase] = max(per_phase.get(phase, 0), round(wait * 1000, 1))
        return {
            "writes": len(waits),
            "every_seconds": self.every,
            "wait_p50_ms": _round(None if not waits else _percentile(waits, 0.5) * 1000),
            "wait_p99_ms": _round(None if not waits else _percentile(waits, 0.99) * 1000),
            "wait_max_ms": _round(None if not waits else worst[0] * 1000),
            "max_after_phase": worst[1],
            "max_ms_after_each_phase": per_phase,
            "over_1s": sum(1 for w in waits if w > 1),
            "errors": len(errors),
            "first_error": errors[0] if errors else None,
        }


def _import_probed(env: dict, csv: Path, probe: _WriteProbe) -> str:
    """``manage.py import_ratings`` with ``probe`` writing meanwhile; its output."""
    command = [sys.executable, "manage.py", "import_ratings", str(csv), "--namespace", NAMESPACE]
    probe.start()
    lines = []
    with subprocess.Popen(
        [*command, "-v2"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    ) as child:  # fmt: skip
        try:
            for line in child.stdout:
                lines.append(line)
                if line.startswith("Phase "):
                    name = line[len("Phase ") :].partition(" ended")[0]
                    progress(f"import_ratings: {name} done")
                    probe.phase = name
                    if name == "items and users":
                        probe.go.set()
        finally:
            probe.done.set()
            probe.go.set()
            probe.join()
    if child.returncode:
        raise SystemExit(f"manage.py import_ratings failed:\n{''.join(lines)[-3000:]}")
    return "".join(lines)


def _children_cpu() -> float:
    """User + system CPU seconds of this process's finished children so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mib(pid: int) -> dict:
    """VmHWM (peak resident set) of a Celery worker's main process and of each process of
    its pool, in MiB: {"main": .., "pool": [..]} (the pool's processes do the work)."""
    import psutil

    def peak(proc_pid: int) -> float | None:
        try:
            status = Path(f"/proc/{proc_pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        return None

    children = psutil.Process(pid).children(recursive=True)
    return {
        "main": peak(pid),
        "pool": [v for v in (peak(c.pid) for c in children) if v is not None],
    }


def _redis_version_mib() -> dict:
    """MEMORY USAGE of every key of the live model version, and Redis's used_memory."""
    from recommendations import store

    client = store.client()
    live = client.get(store.key("live"))
    if live is None:
        return {}
    version = live.decode()
    prefix = store.version_key(version, "")
    total, kinds = 0, {}
    for name in client.scan_iter(match=prefix + "*", count=1000):
        size = client.memory_usage(name, samples=0) or 0
        total += size
        # The key's first part after the version (snapshot, lists, ur, ...): where it goes.
        kind = name.decode()[len(prefix) :].split(":")[0]
        kinds[kind] = kinds.get(kind, 0) + size
    return {
        "version_mib": round(total / 2**20, 1),
        "by_kind_mib": {k: round(v / 2**20, 1) for k, v in sorted(kinds.items())},
        "used_memory_mib": round(client.info("memory")["used_memory"] / 2**20, 1),
    }


# Worker process counts the recompute step measures (``--workers``; both by default).
RECOMPUTE_WORKERS = [1, 2]
# The import step's options (``--no-indexed-insert``).
IMPORT_OPTIONS = {"indexed_insert": True}


def step_recompute(size: str, db: str, env: dict, pg) -> dict:
    import psutil  # noqa: F401 - fail before starting anything when it is missing

    result = {}
    for workers in RECOMPUTE_WORKERS:
        progress(f"recompute on {workers} worker process(es)")
        log = WORK / f"worker-{size}-{db}-{workers}.log"
        proc = _worker(env, workers, log)
        try:
            seconds = _timed_recompute()
            peak = _peak_rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait()
        result[f"workers_{workers}"] = {
            "seconds": round(seconds, 1),
            "peak_rss_mib": max(peak["pool"], default=peak["main"]),
            "peak_rss_mib_each": peak,
        }
    result["redis"] = _redis_version_mib()
    return result


def _ensure_model(env: dict) -> None:
    from recommendations.store import live_model

    if live_model() is None:
        manage(env, "recompute", "-v0")


def _tokens(n: int, *, min_ratings: int) -> list[tuple[int, str]]:
    """(user id, API token) for ``n`` imported users with enough ratings, spread over ids."""
    from django.contrib.auth import get_user_model
    from django.db.models import Count

    from catalog.api.services import auth_token_get_or_create

    users = list(
        get_user_model()
        .objects.filter(username__startswith=f"{NAMESPACE}-")
        .annotate(n=Count("ratings"))
        .filter(n__gte=min_ratings)
        .order_by("pk")
    )
    chosen = random.Random(0).sample(users, min(n, len(users)))
    return [(user.pk, auth_token_get_or_create(user=user).key) for user in chosen]


def _http(method: str, url: str, token: str, body=None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Token {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _task_seconds(log: Path, task: str) -> list[float]:
    """Run times of ``task`` from a Celery worker's INFO log ("... succeeded in 0.12s: ...")."""
    import re

    pattern = re.compile(rf"Task {re.escape(task)}\[[^\]]+\] succeeded in ([\d.]+)s")
    return [float(m.group(1)) for m in pattern.finditer(log.read_text(errors="replace"))]


def _real_changes(plan: list[tuple]) -> list[tuple]:
    """The plan with every rating a change: a score equal to the one the user gave the item
    already (a database streamed into before: the plan is the same each run) moves half a
    star. Re-sending an unchanged score changes no row, so a probe would never see its
    panel change and count as missed (39 of 120 in one rerun at 10M)."""
    from catalog.models import Rating

    given = {}
    users = {who[0] for _, who, *_ in plan}
    items = {item for _, _, item, *_ in plan}
    for user_id, item_id, score in Rating.objects.filter(
        user_id__in=users, item_id__in=items
    ).values_list("user_id", "item_id", "score"):
        given[user_id, item_id] = float(score)
    changed = []
    for at, who, item, score, probe in plan:
        if given.get((who[0], item)) == score:
            score = score + 0.5 if score < 5 else score - 0.5
        given[who[0], item] = score
        changed.append((at, who, item, score, probe))
    return changed


def _queue_depth(client) -> int:
    """Update tasks not yet finished: waiting in the broker's list plus those a worker has
    fetched but not acknowledged. The update is queued with a countdown, and Celery fetches
    such a task at once and holds it until due (acks_late: acknowledged after it ran), so
    the list alone stays near 0 however far behind the workers are."""
    from recommendations.tasks import ITEM_ROWS_PRIORITY, LIST_PRIORITY

    pipe = client.pipeline()
    # One list per priority (kombu's Redis transport: "celery", then "celery\x06\x16<n>").
    for priority in (0, ITEM_ROWS_PRIORITY, LIST_PRIORITY):
        pipe.llen("celery" + (f"\x06\x16{priority}" if priority else ""))
    pipe.hlen("unacked")
    return sum(pipe.execute())


def step_stream(size: str, db: str, env: dict, pg, *, rate: float = 20, seconds: int = 60) -> dict:
    from recommendations.conf import get
    from recsite.redis_server import free_port

    _ensure_model(env)
    from catalog.models import Item
    from recommendations import store

    web_port = free_port()
    log = WORK / f"worker-{size}-{db}-stream.log"
    # INFO: the worker logs each task's run time, which is where the update's comes from.
    procs = [_worker({**env, "LOG_LEVEL": "INFO"}, 2, log)]
    procs.append(
        subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "recsite.wsgi", "-w", "2", "--threads", "4",
             "-b", f"{HOST}:{web_port}", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    )  # fmt: skip
    base = f"http://{HOST}:{web_port}/api/v1"
    try:
        users = _tokens(2000, min_ratings=get("MIN_RATINGS_FOR_PERSONAL"))
        items = list(Item.objects.order_by("-rating_count").values_list("pk", flat=True)[:3000])
        deadline = time.monotonic() + 60
        while _http_ok(f"{base}/health/") is False:
            if time.monotonic() > deadline:
                raise SystemExit("gunicorn did not answer in 60 s")
            time.sleep(0.2)
        rng = random.Random(2)
        total = int(rate * seconds)
        probe_users = {users[n][0] for n in range(0, min(total, len(users)), 10)}
        plan = []
        others = [u for u in users if u[0] not in probe_users]
        probes = [u for u in users if u[0] in probe_users]
        for n in range(total):
            who = probes.pop() if n % 10 == 0 and probes else rng.choice(others)
            plan.append((n / rate, who, rng.choice(items), rng.randrange(1, 11) / 2, n % 10 == 0))
        plan = _real_changes(plan)
        depth, stop = [], threading.Event()
        queue_client = store.client()
        uu = store.version_key(store.live_model().version, "uu")

        def sample_queue():
            while not stop.is_set():
                depth.append(_queue_depth(queue_client))
                time.sleep(0.5)

        # Freshness: the time from sending a probe's rating to the moment the user's "people
        # like you" row (what me/similar-users/ and the panel read) changes in Redis, watched
        # by one thread every 50 ms: polling the API instead would add a request stream of
        # its own to the one measured. At the end each probe's API answer is compared with
        # the one before its rating ("confirmed": the change reached the API).
        probes_out, probes_lock, freshness = {}, threading.Lock(), {}

        def watch_rows():
            while not stop.is_set():
                with probes_lock:
                    watching = list(probes_out.items())
                if watching:
                    pipe = queue_client.pipeline(transaction=False)
                    for user_id, _ in watching:
                        pipe.hget(uu, user_id)
                    now = time.monotonic()
                    for (user_id, (began, before)), row in zip(
                        watching, pipe.execute(), strict=True
                    ):
                        if row != before:
                            freshness[user_id] = (now - began) * 1000
                            with probes_lock:
                                probes_out.pop(user_id, None)
                time.sleep(0.05)

        threads = [threading.Thread(target=f, daemon=True) for f in (sample_queue, watch_rows)]
        for thread in threads:
            thread.start()
        put_ms, late_ms, statuses, failures, probe_puts = [], [], {}, [], {}
        # Each probe's answer before the stream, not during it (where it would be one more
        # request to a busy server): only that user's own update rewrites their row.
        api_before = {
            user[0]: (user[1], _answer(f"{base}/me/similar-users/", user[1]))
            for _, user, _, _, probe in plan
            if probe
        }

        def one(due, user, item, score, probe):
            user_id, token = user
            try:
                if probe:
                    with probes_lock:
                        probes_out[user_id] = (time.monotonic(), queue_client.hget(uu, user_id))
                began = time.monotonic()
                status, _ = _http("PUT", f"{base}/me/ratings/{item}/", token, {"score": score})
            except OSError as error:  # time-outs, refused connections: no answer at all
                failures.append(type(error).__name__)
                return
            done = time.monotonic()
            put_ms.append((done - began) * 1000)
            # From when the plan offered it: a request that waited for a free thread counts.
            late_ms.append((done - due) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
            if probe:
                probe_puts[user_id] = {"item": item, "score": score, "status": status}

        progress(f"stream: {total} ratings at {rate:g}/s")
        started = time.monotonic()
        # Enough threads that a slow answer never holds back the next rating (open loop).
        with ThreadPoolExecutor(max_workers=256) as pool:
            for at, user, item, score, probe in plan:
                time.sleep(max(0.0, started + at - time.monotonic()))
                pool.submit(one, started + at, user, item, score, probe)
            offered_for = time.monotonic() - started
        at_end = _queue_depth(queue_client)
        drain_started = time.monotonic()
        progress("draining the queue")
        while _queue_depth(queue_client) and time.monotonic() - drain_started < 300:
            time.sleep(0.2)
        drained_after = time.monotonic() - drain_started
        time.sleep(1)  # the last updates' rows and log lines
        stop.set()
        for thread in threads:
            thread.join()
        # What a missed probe looked like afterwards: why its row never changed.
        missed_detail = []
        for user_id in sorted(set(api_before) - set(freshness)):
            began, before = probes_out.get(user_id, (None, None))
            now_row = queue_client.hget(uu, user_id)
            missed_detail.append({
                "user": user_id, **probe_puts.get(user_id, {}),
                "row_before_none": before is None, "row_now_none": now_row is None,
                "row_changed_now": now_row != before,
                "pending": queue_client.exists(store.key("pending", user_id)),
                "queued": queue_client.exists(store.key("queued", user_id)),
            })  # fmt: skip
        confirmed = sum(
            _answer(f"{base}/me/similar-users/", token) not in (before, None)
            for user_id, (token, before) in api_before.items()
            if user_id in freshness
        )
        updates = _task_seconds(log, "recommendations.tasks.model_update")
        # The tasks an update queues: the stored list's refresh, the deferred item rows.
        later = {
            name: [s * 1000 for s in _task_seconds(log, f"recommendations.tasks.{name}")]
            for name in ("ready_list_refresh", "item_rows_refresh")
        }
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait()
    errors = sum(n for code, n in statuses.items() if code >= 400) + len(failures)
    fresh = list(freshness.values())
    return {
        "ratings": total,
        "offered_seconds": round(offered_for, 1),
        "put_p50_ms": _round(_percentile(put_ms, 0.5)),
        "put_p95_ms": _round(_percentile(put_ms, 0.95)),
        "put_from_schedule_p95_ms": _round(_percentile(late_ms, 0.95)),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "no_answer": len(failures),
        "errors": errors,
        "freshness_samples": len(fresh),
        "freshness_missed": len(api_before) - len(fresh),  # the row never changed
        "freshness_confirmed_by_api": confirmed,
        "freshness_missed_detail": missed_detail[:40],
        "freshness_p50_ms": _round(_percentile(fresh, 0.5)),
        "freshness_p95_ms": _round(_percentile(fresh, 0.95)),
        "update_tasks": len(updates),
        "update_p50_ms": _round(_percentile([s * 1000 for s in updates], 0.5)),
        "update_p95_ms": _round(_percentile([s * 1000 for s in updates], 0.95)),
        **{
            f"{name}_{key}": value
            for name, ms in later.items()
            for key, value in (
                ("tasks", len(ms)),
                ("p50_ms", _round(_percentile(ms, 0.5))),
                ("p95_ms", _round(_percentile(ms, 0.95))),
            )
        },
        "queue_max": max(depth, default=0),
        "queue_at_end_of_stream": at_end,
        "drained_seconds_after_stream": round(drained_after, 1),
    }


def _answer(url: str, token: str) -> bytes | None:
    """The body of a GET, or None when the server gave no answer."""
    try:
        return _http("GET", url, token)[1]
    except OSError:
        return None


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def step_reads(size: str, db: str, env: dict, pg, *, requests: int = 1000) -> dict:
    from django.contrib.auth import get_user_model
    from django.template import Context, Template

    from catalog.models import Item
    from recommendations.conf import get

    _ensure_model(env)
    users = _tokens(500, min_ratings=get("MIN_RATINGS_FOR_PERSONAL"))
    tokens = WORK / "tokens.txt"
    tokens.write_text("\n".join(token for _, token in users))
    item = Item.objects.order_by("-rating_count").values_list("pk", flat=True)[50]
    paths = [
        # The trivial endpoint (database, Redis, model version): the same run's baseline, so
        # reads measured on a busy machine can be read as a multiple of it.
        "/api/v1/health/",
        "/api/v1/me/recommendations/?limit=10",
        "/api/v1/me/similar-users/",
        "/api/v1/me/ratings/",
        f"/api/v1/items/{item}/similar/",
        "/api/v1/items/popular/",
        "/api/v1/items/top-rated/",
        "/api/v1/items/",
        f"/api/v1/items/{item}/predicted-rating/",
    ]
    progress("reads: API in-process")
    out = subprocess.run(
        [sys.executable, "bench/api_inprocess.py", str(tokens), *paths,
         "--requests", str(requests)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    result = {}
    for line in out.splitlines():
        row = json.loads(line)
        result[row["path"]] = {"p50_ms": row["median_ms"], "p99_ms": row["p99_ms"]}

    # Panels: each template tag rendered in-process for random users (and items).
    User = get_user_model()
    people = [User.objects.get(pk=pk) for pk, _ in users[:200]]
    popular = list(Item.objects.order_by("-rating_count")[:500])
    rng = random.Random(3)
    panels = {
        "panel people_like_you": (
            "{% people_like_you user %}",
            lambda: {"user": rng.choice(people)},
        ),
        "panel because_you_rated": (
            "{% because_you_rated user %}",
            lambda: {"user": rng.choice(people)},
        ),
        "panel also_liked": (
            "{% also_liked item %}",
            lambda: {"item": rng.choice(popular), "user": rng.choice(people)},
        ),
    }
    progress("reads: panels")
    for name, (tag, context) in panels.items():
        template = Template("{% load recommendation_panels %}" + tag)
        for _ in range(50):
            template.render(Context(context()))
        times = []
        for _ in range(requests):
            ctx = Context(context())
            began = time.perf_counter()
            template.render(ctx)
            times.append((time.perf_counter() - began) * 1000)
        result[name] = {
            "p50_ms": round(statistics.median(times), 3),
            "p99_ms": round(_percentile(times, 0.99), 3),
        }
    return result


STEP_FUNCTIONS = {
    "import": step_import,
    "recompute": step_recompute,
    "stream": step_stream,
    "reads": step_reads,
}


# --- driver -----------------------------------------------------------------------------


def _load() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def _save(key: str, value: dict) -> None:
    results = _load()
    results[key] = value
    OUT.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))


def run_child(size: str, db: str, steps: list[str], pg_port: int | None) -> None:
    """Run ``steps`` for one size and database in this process (Django set up once)."""
    from recsite import redis_server

    pg = None
    if db == "postgres":
        pg = Postgres()
        pg.port = pg_port
    redis_port = redis_server.free_port()
    # (the dump file a 25M run keeps takes longer than the default 10 s to load when busy)
    redis = redis_server.start(redis_port, WORK / f"redis-{size}-{db}", timeout=120)
    env = None
    try:
        env = _environment(_database_url(size, db, pg), redis_port)
        commit, product = git_commit(), product_commit()
        for step in steps:
            if step != "import":
                if step == steps[0]:
                    # A database imported by older code gets the product's newer migrations
                    # (nothing to do when it is current), so later steps run on today's schema.
                    manage(env, "migrate", "--noinput", "-v0")
                import django

                django.setup()
            progress(step)
            started = time.monotonic()
            began_at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
            failed = None
            with LoadSampler() as load:
                try:
                    result = STEP_FUNCTIONS[step](size, db, env, pg)
                except (Exception, SystemExit) as error:
                    # Saved (a resumed run measures it again) and shown in the table; the
                    # later steps of this size and database would measure a broken state.
                    failed = f"{type(error).__name__}: {error}"[-2000:]
                    result = {"error": failed}
            result["step_seconds"] = round(time.monotonic() - started, 1)
            result["measured_at"] = began_at
            result["commit"] = commit
            result["product_commit"] = product
            result["load_average"] = load.summary()
            result["command"] = _command(size, db, step)
            _save(f"{size}/{db}/{step}", result)
            print(json.dumps({f"{size}/{db}/{step}": result}), flush=True)
            if failed:
                raise SystemExit(f"{size} {db} {step} failed: {failed}")
    finally:
        # Kept for the next run of this size and database (Redis loads its dump file at
        # start), so a resumed run's later steps read the model the recompute published
        # instead of recomputing it (at 25M, an hour).
        try:
            if env is not None:
                _redis_client(env).save()
        except Exception as error:  # noqa: BLE001 - best effort: a later run recomputes
            print(f"could not save Redis for the next run: {error}", file=sys.stderr)
        redis.terminate()
        redis.wait()


def _redis_client(env: dict):
    import redis

    # No 5 s socket time-out (redis-py 8's default): SAVE of a 25M version's gigabyte, on a
    # busy machine, takes longer.
    return redis.Redis.from_url(env["REDIS_URL"], socket_timeout=None)


def _command(size: str, db: str, step: str) -> str:
    command = f"python bench/scale.py --sizes {size} --db {db} --steps {step}"
    if step == "recompute" and RECOMPUTE_WORKERS != [1, 2]:
        command += " --workers " + ",".join(map(str, RECOMPUTE_WORKERS))
    if step == "import" and not IMPORT_OPTIONS["indexed_insert"]:
        command += " --no-indexed-insert"
    return command


def _commit(result: dict) -> str:
    """The product code measured (older results saved only the branch's head)."""
    return result.get("product_commit") or result.get("commit", "")


def _load_text(result: dict) -> str:
    """ "mean (max)" of the load average over a step; older results saved one number."""
    load = result.get("load_average")
    if isinstance(load, dict):
        return f"{load['mean']:.1f} ({load['max']:.1f})"
    return "" if load is None else f"{load:.1f}"


def _peaks(workers: dict) -> str:
    pool = workers.get("peak_rss_mib_each", {}).get("pool")
    return "+".join(f"{v:.0f}" for v in pool) if pool else str(workers["peak_rss_mib"])


def _site_writes(probe: dict | None) -> str:
    if not probe:
        return "-"
    return (
        f"{probe['wait_max_ms']} ({probe['max_after_phase']}), {probe['over_1s']} of "
        f"{probe['writes']}, {probe['errors']}"
    )


# Per step: its table's columns and each result's cells (size, db, load and commit added).
COLUMNS = {
    "import": (
        [
            "import s (CPU s)",
            "phases s",
            "bulk load s",
            "ratio",
            "+ its indexes s (ratio)",
            "indexed insert s",
            "site writes: max ms (after phase), > 1 s, errors",
        ],
        lambda r: [
            f"{r['import_seconds']} ({r['import_cpu_seconds']})",
            r.get("output", "").partition("Phases: ")[2].rstrip("."),
            r["bulk_load_seconds"],
            r["ratio"],
            f"{r['bulk_load_index_seconds']} ({r['ratio_to_bulk_load_and_indexes']})"
            if "bulk_load_index_seconds" in r
            else "",
            r.get("indexed_insert_seconds") or "-",
            _site_writes(r.get("site_writes")),
        ],
    ),
    "recompute": (
        ["1 process s", "2 processes s", "peak RSS MiB per pool process (1 / 2)", "Redis MiB"],
        lambda r: [
            r.get("workers_1", {}).get("seconds", "-"),
            r.get("workers_2", {}).get("seconds", "-"),
            " / ".join(_peaks(r[w]) if w in r else "-" for w in ("workers_1", "workers_2")),
            r.get("redis", {}).get("version_mib", ""),
        ],
    ),
    "stream": (
        ["ratings (offered s)", "PUT p50/p95 ms", "errors",
         "freshness p50/p95 ms (samples, missed)", "update p50/p95 ms (tasks)",
         "queue max / at end", "drained after s"],
        lambda r: [
            f"{r['ratings']} ({r['offered_seconds']})",
            f"{r['put_p50_ms']}/{r['put_p95_ms']}",
            r["errors"],
            f"{r['freshness_p50_ms']}/{r['freshness_p95_ms']} "
            f"({r['freshness_samples']}, {r['freshness_missed']})",
            f"{r['update_p50_ms']}/{r['update_p95_ms']} ({r['update_tasks']})",
            f"{r['queue_max']} / {r.get('queue_at_end_of_stream', '')}",
            r["drained_seconds_after_stream"],
        ],
    ),
}  # fmt: skip


def table(results: dict) -> str:
    """Markdown tables of every saved result; "load" is the 1-minute load average over the
    step, mean (max), and "commit" the last commit of the product code (outside bench/)."""
    pairs = []
    for key in sorted(results, key=lambda k: (k.split("/")[0].rjust(4), k)):
        size, db, _ = key.split("/")
        if (size, db) not in pairs:
            pairs.append((size, db))

    def section(headers: list[str], rows: list[list]) -> list[str]:
        headers = ["size", "db", *headers, "load", "commit"]
        return [
            "| " + " | ".join(headers) + " |",
            "|" + "---|" * len(headers),
            *("| " + " | ".join(map(str, row)) + " |" for row in rows),
            "",
        ]

    lines = []
    for step, (headers, cells) in COLUMNS.items():
        rows = []
        for size, db in pairs:
            r = results.get(f"{size}/{db}/{step}")
            if r and "error" not in r:
                rows.append([size, db, *cells(r), _load_text(r), _commit(r)])
        lines += section([f"{step}: {headers[0]}", *headers[1:]], rows)
    rows = []
    for size, db in pairs:
        reads = results.get(f"{size}/{db}/reads", {})
        for name, r in reads.items():
            if isinstance(r, dict) and "p50_ms" in r:
                rows.append(
                    [size, db, name, r["p50_ms"], r["p99_ms"], _load_text(reads), _commit(reads)]
                )
    lines += section(["read (in-process)", "p50 ms", "p99 ms"], rows)
    failed = [(k, v["error"]) for k, v in results.items() if "error" in v]
    lines.extend(f"FAILED {key}: {error.splitlines()[-1][:300]}" for key, error in failed)
    return "\n".join(lines).rstrip()


def pending_steps(done: dict, size: str, db: str, steps: list[str], *, force: bool) -> list:
    """The steps still to measure: not saved yet, or saved with an error (all of them with
    ``force``). The later steps read what the import wrote: on SQLite the import comes first
    when its database file is gone, and a new import means every step asked for again."""
    pending = [s for s in steps if force or "error" in done.get(f"{size}/{db}/{s}", {"error": 1})]
    if db == "sqlite" and "import" not in pending and not (WORK / f"{size}.sqlite3").exists():
        pending = ["import", *pending]
    if "import" in pending:
        pending = ["import", *(s for s in steps if s != "import")]
    return pending


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1M,10M", help="comma-separated: 1M, 10M, 25M")
    parser.add_argument("--db", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument(
        "--steps", default=",".join(STEPS), help="comma-separated: " + ", ".join(STEPS)
    )
    parser.add_argument("--force", action="store_true", help="measure again what is saved")
    parser.add_argument(
        "--workers",
        default="1,2",
        help="recompute step: comma-separated worker process counts to measure (1, 2)",
    )
    parser.add_argument(
        "--no-indexed-insert",
        action="store_true",
        help="import step: leave out the insert into an indexed table (the database alone)",
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("SIZE", "DB", "PG_PORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    steps = [s for s in args.steps.split(",") if s]
    RECOMPUTE_WORKERS[:] = [int(w) for w in args.workers.split(",") if w]
    IMPORT_OPTIONS["indexed_insert"] = not args.no_indexed_insert
    if not RECOMPUTE_WORKERS or set(RECOMPUTE_WORKERS) - {1, 2}:
        raise SystemExit("--workers: choose from 1, 2")
    if args.child:
        size, db, port = args.child
        run_child(size, db, steps, int(port) if port != "-" else None)
        return

    from tqdm import tqdm

    from recommendations.engine.synthetic import SIZES

    sizes = [s for s in args.sizes.split(",") if s]
    dbs = [d for d in args.db.split(",") if d]
    for name, allowed in ((sizes, SIZES), (dbs, ("sqlite", "postgres")), (steps, STEPS)):
        unknown = set(name) - set(allowed)
        if unknown:
            raise SystemExit(f"unknown {sorted(unknown)}; choose from {list(allowed)}")
    # An import makes the database the later steps read: redo them after a new import.
    done = _load()
    todo = []
    for size in sizes:
        for db in dbs:
            pending = pending_steps(done, size, db, steps, force=args.force)
            if pending:
                todo.append((size, db, pending))
    pg, failures = None, []
    if any(db == "postgres" for _, db, _ in todo):
        pg = Postgres().start()
    try:
        with tqdm(total=sum(len(p) for *_, p in todo), desc="scale", unit="step") as bar:
            for size, db, pending in todo:
                before = bar.n
                bar.set_postfix_str(f"{size} {db}: data")
                ratings_csv(size)
                bar.set_postfix_str(f"{size} {db}: {pending[0]}")
                # One process per size and database: Django set up once, one Redis for
                # the model that the recompute publishes and the later steps read.
                child = subprocess.Popen(
                    [sys.executable, __file__, "--steps", ",".join(pending),
                     "--workers", args.workers,
                     *(["--no-indexed-insert"] if args.no_indexed_insert else []),
                     "--child", size, db,
                     str(pg.port) if pg else "-"],
                    cwd=ROOT, stdout=subprocess.PIPE, text=True,
                )  # fmt: skip
                for line in child.stdout:
                    try:
                        message = json.loads(line)
                    except ValueError:
                        continue  # not ours: a library printing to stdout
                    if "progress" in message:
                        bar.set_postfix_str(f"{size} {db}: {message['progress']}")
                    else:
                        bar.update(1)
                if child.wait():
                    # The next size or database is independent of this one: go on.
                    failures.append(f"{size} {db} (exit {child.returncode})")
                    bar.update(len(pending) - (bar.n - before))
    finally:
        if pg is not None:
            pg.stop()
    print(table(_load()))
    if failures:
        raise SystemExit("failed: " + ", ".join(failures) + " (see the error in the table)")


if __name__ == "__main__":
    main()
