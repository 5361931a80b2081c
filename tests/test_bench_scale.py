"""The bench-scale harness's own bookkeeping (bench/scale.py): what it measures again on a
resumed run, how a failed step shows, and what it counts as the update queue's depth."""

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import scale  # noqa: E402
from bench.conditions import LoadSampler  # noqa: E402

STEPS = ["import", "recompute", "stream", "reads"]


@pytest.fixture
def sqlite_present(tmp_path, monkeypatch):
    monkeypatch.setattr(scale, "WORK", tmp_path)
    (tmp_path / "1M.sqlite3").touch()


def test_resume_skips_saved_steps_and_redoes_failed_ones(sqlite_present):
    """A step saved with an error is measured again; saved results are kept."""
    done = {
        "1M/sqlite/import": {"import_seconds": 1},
        "1M/sqlite/recompute": {"error": "SystemExit: recompute failed"},
        "1M/sqlite/stream": {"ratings": 1},
    }
    assert scale.pending_steps(done, "1M", "sqlite", STEPS, force=False) == [
        "recompute",
        "reads",
    ]


def test_a_new_import_redoes_every_step_asked_for(sqlite_present):
    """The later steps read what the import wrote, so an import pending means all again."""
    done = {"1M/postgres/recompute": {"workers_1": {}}, "1M/postgres/stream": {"ratings": 1}}
    assert scale.pending_steps(done, "1M", "postgres", STEPS, force=False) == STEPS


def test_a_missing_sqlite_file_means_importing_first(tmp_path, monkeypatch):
    monkeypatch.setattr(scale, "WORK", tmp_path)
    done = {f"1M/sqlite/{s}": {"x": 1} for s in STEPS}
    assert scale.pending_steps(done, "1M", "sqlite", ["reads"], force=False) == [
        "import",
        "reads",
    ]


def test_table_lists_a_failed_step_apart_with_its_error():
    results = {
        "1M/sqlite/reads": {
            "/api/v1/health/": {"p50_ms": 0.5, "p99_ms": 1.0},
            "load_average": {"start": 1.0, "mean": 2.0, "max": 3.0},
            "product_commit": "abc1234",
        },
        "1M/sqlite/recompute": {"error": "Traceback\nSystemExit: recompute 3 failed: lock lost"},
    }
    text = scale.table(results)
    assert "| 1M | sqlite | /api/v1/health/ | 0.5 | 1.0 | 2.0 (3.0) | abc1234 |" in text
    assert "FAILED 1M/sqlite/recompute: SystemExit: recompute 3 failed: lock lost" in text


def test_queue_depth_counts_tasks_a_worker_holds(redis_client):
    """A countdown task leaves the broker's list at once and waits unacknowledged in the
    worker: it is still queued work."""
    redis_client.rpush("celery", "a", "b")
    redis_client.hset("unacked", mapping={"t1": "x", "t2": "y", "t3": "z"})
    assert scale._queue_depth(redis_client) == 5


def test_load_sampler_summarises_the_load_average():
    with LoadSampler(every=0.01) as load:
        pass
    summary = load.summary()
    assert set(summary) == {"start", "mean", "max"}
    assert summary["max"] >= summary["mean"] >= 0


def test_an_import_measured_without_the_indexed_insert_says_so(monkeypatch):
    """``--no-indexed-insert``: the table shows "-" for it and the saved command names it."""
    monkeypatch.setitem(scale.IMPORT_OPTIONS, "indexed_insert", False)
    results = {
        "10M/postgres/import": {
            "import_seconds": 50.0,
            "import_cpu_seconds": 9.0,
            "output": "Phases: read 5.0 s (CPU 4.0).",
            "bulk_load_seconds": 10.0,
            "ratio": 5.0,
            "bulk_load_index_seconds": 20.0,
            "ratio_to_bulk_load_and_indexes": 1.67,
            "indexed_insert_seconds": None,
            "load_average": {"start": 1.0, "mean": 2.0, "max": 3.0},
            "product_commit": "abc1234",
        }
    }
    text = scale.table(results)
    assert "| 10.0 | 5.0 | 20.0 (1.67) | - | - | 2.0 (3.0) | abc1234 |" in text
    assert scale._command("10M", "postgres", "import").endswith(
        "--steps import --no-indexed-insert"
    )


@pytest.mark.django_db(transaction=True)
def test_the_import_write_probe_rates_through_the_service_and_times_each_write():
    """The import step's probe rates the file's items (once told the items exist) as a
    user of its own through ``rating_upsert``, on its own connection, until told to stop;
    its summary counts the writes and their waits, and the table shows the longest."""
    from catalog.models import Item, Rating

    items = [
        Item.objects.create(title=f"t{n}", external_id=f"{scale.NAMESPACE}:{n}") for n in range(3)
    ]
    probe = scale._WriteProbe(every=0.01)
    probe.start()
    probe.phase = "stage"
    probe.go.set()
    deadline = time.monotonic() + 30
    while len(probe.writes) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    probe.done.set()
    probe.join(10)
    summary = probe.summary()
    assert summary["writes"] == len(probe.writes) >= 5
    assert summary["errors"] == 0 and summary["over_1s"] == 0
    assert summary["max_after_phase"] == "stage"
    assert 0 < summary["wait_p50_ms"] <= summary["wait_max_ms"] < 1000
    ratings = Rating.objects.filter(user__username="probe-writer")
    assert 1 <= ratings.count() <= len(items)
    cell = scale._site_writes(summary)
    assert cell.startswith(f"{summary['wait_max_ms']} (stage), 0 of {summary['writes']}, 0")
