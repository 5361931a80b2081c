"""How long SQLite's append holds the write lock at a time, seen from another connection.

    python bench/append_lock.py var/scale/10M.csv [--db var/tmp/append-lock.sqlite3]

Migrates a new SQLite database, then imports the file (``import_ratings``, mode auto: a
first import, so the append) while a thread on its own connection tries ``BEGIN
IMMEDIATE`` without waiting (busy timeout 0) every ``--every`` ms and rolls back at once
when it gets the lock. A run of failed tries is a stretch the write lock was held (by one
of the import's transactions, or a checkpoint's); a success between two is a window a
waiting site write could take. Prints the held stretches' count, p50 / p99 / max ms, how
many were over 1 s, and the free windows' p50 / min ms (the gaps between transactions).

Why: a site write waits in SQLite's busy handler, which sleeps between tries (1, 2, 5 ...
then 100 ms at a time once it has waited ~330 ms), so it can sleep through a gap shorter
than its sleep and wait for the next transaction too: its wait is not only the longest
transaction's.
"""

import argparse
import json
import os
import sqlite3
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("csv", type=Path)
    parser.add_argument("--db", type=Path, default=ROOT / "var" / "tmp" / "append-lock.sqlite3")
    parser.add_argument("--every", type=float, default=5.0, help="ms between tries")
    args = parser.parse_args()
    args.db.parent.mkdir(parents=True, exist_ok=True)
    for path in args.db.parent.glob(args.db.name + "*"):
        path.unlink()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="recsite.settings.base",
        DEBUG="0",
        SECRET_KEY="bench-only-not-a-secret",
        DATABASE_URL=f"sqlite:///{args.db.resolve()}",
        REDIS_URL="redis://127.0.0.1:1/0",
        LOG_LEVEL="ERROR",
    )
    import django

    django.setup()
    from django.core.management import call_command

    from catalog.importers import loader
    from catalog.importers.formats import open_source

    call_command("migrate", verbosity=0)
    held, free = [], []
    stop, started = threading.Event(), threading.Event()

    def probe():
        own = sqlite3.connect(args.db, timeout=0, isolation_level=None)
        state, since = None, time.perf_counter()
        while not stop.is_set():
            try:
                own.execute("BEGIN IMMEDIATE")
                own.execute("ROLLBACK")
                now_free = True
            except sqlite3.OperationalError:
                now_free = False
            now = time.perf_counter()
            if now_free != state:
                if state is not None and started.is_set():
                    (free if state else held).append((now - since) * 1000)
                state, since = now_free, now
            time.sleep(args.every / 1000)
        own.close()

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()

    def on_phase(name):
        if name == "items and users":
            started.set()  # from the append's start
        elif name == "merge":
            started.clear()

    load = os.getloadavg()[0]
    began = time.perf_counter()
    report = loader.import_ratings(open_source(args.csv), namespace="syn", on_phase=on_phase)
    seconds = time.perf_counter() - began
    stop.set()
    thread.join()

    def q(values, p):
        return (
            round(statistics.quantiles(values, n=100, method="inclusive")[p - 1], 1)
            if len(values) > 1
            else None
        )

    print(
        json.dumps(
            {
                "ratings": report.ratings_written,
                "import_seconds": round(seconds, 1),
                "phases": report.seconds,
                "cpu": report.cpu_seconds,
                "load_before": round(load, 1),
                "load_after": round(os.getloadavg()[0], 1),
                "held": {
                    "count": len(held),
                    "p50_ms": q(held, 50),
                    "p99_ms": q(held, 99),
                    "max_ms": round(max(held), 1) if held else None,
                    "over_1s": sum(1 for h in held if h > 1000),
                },
                "free": {
                    "count": len(free),
                    "p50_ms": q(free, 50),
                    "min_ms": round(min(free), 1) if free else None,
                    "under_100ms": sum(1 for f in free if f < 100),
                },
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
