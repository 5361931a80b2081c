"""A throwaway site for in-process benchmarks: a private ``redis-server`` on a free
loopback port and a SQLite database in a folder, Django set up on both, migrated and
seeded with the demo catalogue (2,000 items, 600 users) when empty."""

import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def private_site(folder: Path):
    """Set Django up on a private Redis and ``folder``'s SQLite; stop Redis afterwards."""
    redis_bin = shutil.which("redis-server")
    if not redis_bin:
        raise SystemExit("redis-server is not on the PATH")
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    redis = subprocess.Popen(
        [redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", folder],
        stdout=subprocess.DEVNULL,
    )
    try:
        os.environ.update(
            DJANGO_SETTINGS_MODULE="recsite.settings.base",
            DEBUG="1",
            RECSITE_VAR_DIR=str(folder),
            DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",
            REDIS_URL=f"redis://127.0.0.1:{port}/0",
            RECOMPUTE_ON_WORKER_START="0",
        )
        import django

        django.setup()
        from django.core.management import call_command

        time.sleep(0.3)
        call_command("migrate", verbosity=0)
        call_command("seed_demo", "--if-empty", verbosity=0)
        yield
    finally:
        redis.terminate()
        redis.wait()
