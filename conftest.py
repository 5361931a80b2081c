"""Fixtures shared by every app's tests: a real Redis, MovieLens' location."""

import os
from pathlib import Path

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
    """A real redis-server on a free loopback port for the whole session."""
    port = redis_server.free_port()
    proc = redis_server.start(port, tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)
