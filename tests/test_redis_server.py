"""The private Redis launcher: the suite's server, and `make run`'s supervisor of one."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent


def test_the_suite_gets_a_real_redis(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.set("recsite:test", b"\x00\x01")
    assert client.get("recsite:test") == b"\x00\x01"
    assert client.info("server")["redis_version"]


def _redis_pid(port: int) -> int | None:
    """The pid of the redis-server on ``port``; None while nothing answers there (asked
    on a fresh connection each time: a client's retries would hide the outage)."""
    from recsite.redis_server import _answers_ping

    if not _answers_ping(port):
        return None
    try:
        with redis.Redis(port=port, socket_timeout=0.5, retry=None) as client:
            return client.info("server")["process_id"]
    except (redis.RedisError, OSError):
        return None


def _wait_for(predicate, timeout=30.0, what="condition"):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.django_db
def test_the_launcher_restarts_a_killed_redis_and_the_site_answers_meanwhile(
    tmp_path, settings, client
):
    """Item 7: `make run`'s redis process (this launcher) outlives its redis-server, so
    honcho never sees it exit; pages and health answer from their fallbacks until Redis is
    back, then see it again."""
    from recommendations import store
    from recsite import redis_server

    port = redis_server.free_port()
    log = (tmp_path / "launcher.log").open("wb")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "recsite.redis_server", "--port", str(port),
         "--dir", str(tmp_path / "redis"), "--min-backoff", "8"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    store._client_for.cache_clear()
    try:
        first = _wait_for(lambda: _redis_pid(port), what="the first redis-server")
        os.kill(first, signal.SIGKILL)
        _wait_for(lambda: _redis_pid(port) is None, what="redis to go away")
        # Within the 8 s backoff: Redis is down, the launcher is not, the site answers.
        assert launcher.poll() is None
        health = client.get("/api/v1/health/")
        assert (health.status_code, health.json()["redis"]) == (200, "down")
        assert client.get("/").status_code == 200
        assert _redis_pid(port) is None  # all of that while Redis was really down

        second = _wait_for(lambda: _redis_pid(port), what="redis to come back")
        assert second != first and launcher.poll() is None
        assert client.get("/api/v1/health/").json()["redis"] == "ok"
    finally:
        launcher.terminate()
        code = launcher.wait(timeout=20)
        store._client_for.cache_clear()
    assert code == 0
    assert _redis_pid(port) is None  # the launcher took its redis-server with it
