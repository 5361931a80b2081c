"""Fixtures shared by every app's tests: a real Redis, a real Celery worker, MovieLens."""

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from recsite import redis_server

ROOT = Path(__file__).resolve().parent


def ml100k_path() -> Path:
    return Path(os.environ.get("RECSITE_ML100K", ROOT.parent / "shared" / "data" / "ml-100k"))


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """The MovieLens 100k folder; tests using it skip where it is absent (licence: not shipped)."""
    path = ml100k_path()
    if not (path / "u.data").is_file():
        pytest.skip(f"MovieLens 100k not found at {path} (set RECSITE_ML100K to its folder)")
    return path


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """A real redis-server for the whole session, on the port the test settings chose."""
    from django.conf import settings

    url = settings.REDIS_URL
    proc = redis_server.start(urlsplit(url).port, tmp_path_factory.mktemp("redis"))
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def redis_client(redis_url):
    """The test Redis, emptied before each test that uses it."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()


def database_url_for_subprocess() -> str:
    """The URL of the test database as this process sees it, for a worker process."""
    from django.db import connection

    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{conf['NAME']}"
    auth = conf["USER"] + (f":{conf['PASSWORD']}" if conf["PASSWORD"] else "")
    return f"postgres://{auth}@{conf['HOST']}:{conf['PORT']}/{conf['NAME']}"


class WorkerProcess:
    """A real ``celery worker`` subprocess on the test database and the test Redis."""

    def __init__(self, log_path: Path, **env):
        self.log_path = log_path
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "recsite.settings.test",
            "DATABASE_URL": database_url_for_subprocess(),
            **{k: str(v) for k, v in env.items()},
        }
        self.proc = None

    def start(self, concurrency: int = 1, timeout: float = 60) -> "WorkerProcess":
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "recsite", "worker",
                f"--concurrency={concurrency}", "--pool=prefork", "--loglevel=INFO",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log()}")
            if " ready." in self.log():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"celery worker not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once: a crash, not a shutdown."""
        import signal

        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def celery_worker_factory(redis_client, transactional_db, tmp_path):
    """Start real workers with extra environment; all are stopped after the test."""
    workers = []

    def start(concurrency: int = 1, **env) -> WorkerProcess:
        if not workers:
            # Tasks queued while the test set up its data (e.g. model updates after seeding)
            # are not what the test is about.
            from recsite.celery import app

            app.control.purge()
        worker = WorkerProcess(tmp_path / f"worker-{len(workers)}.log", **env)
        workers.append(worker)
        return worker.start(concurrency=concurrency)

    yield start
    for worker in workers:
        worker.stop()
