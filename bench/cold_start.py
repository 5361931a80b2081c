"""What cold start costs: the recompute's content stage, a page's read, one item's update.

    python bench/cold_start.py [--items 62423] [--reads 300]

Starts a private ``redis-server`` on a free loopback port, seeds a fresh SQLite database
in a temporary folder with ``seed_demo`` (2,000 items, ~30,000 ratings), then, at 2,000
items and again after adding synthetic items up to ``--items`` (default 62,423, the
number of movies in MovieLens 25M; titles from the demo's words, a year, one to three of
its genres), prints:

- ``fit``: the prepare step's part (reading the catalogue, TF-IDF, storing it), CPU s;
- ``rows``: every content row (``cold_start.content_shard`` over the plan of 4 shards,
  in this process), CPU s (the kernel's threads included) and wall s;
- ``Redis``: MiB of the version's content keys (rows, floors, the stored TF-IDF model);
- ``also liked``: ``reads.similar_items`` (limit 10) for ``--reads`` random items, p50
  and p99 ms in-process (only content rows are published, so the panel is all content);
- ``starter``: ``reads.recommendations_for_user`` for a user with two genre picks and one
  5-star rating, p50 and p99 ms;
- ``item update``: ``cold_start.content_item_update`` for a new item (median of 5), ms.

Run from a checkout without content rows (one with ``cold_start.content_index``, e.g.
main before this change: copy this file into its ``bench/``), it prints the same reads
with the per-process index instead, after building it once (``rebuild``, CPU s).

Needs redis-server on the PATH.
"""

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.private_site import private_site  # noqa: E402


def _grow(total: int) -> None:
    """Add synthetic items (bulk, like an import) until the catalogue holds ``total``."""
    import numpy as np

    from catalog.models import Genre, Item

    rng = np.random.default_rng(0)
    genres = list(Genre.objects.values_list("pk", flat=True))
    words = sorted({w for t in Item.objects.values_list("title", flat=True) for w in t.split()})
    missing = total - Item.objects.count()
    through = Item.genres.through
    for start in range(0, missing, 5000):
        n = min(5000, missing - start)
        made = Item.objects.bulk_create(
            Item(
                title=" ".join(rng.choice(words, size=rng.integers(1, 4))).title(),
                year=int(rng.integers(1920, 2025)),
                external_id=f"bench:{start + k}",
            )
            for k in range(n)
        )
        through.objects.bulk_create(
            through(item_id=item.pk, genre_id=int(g))
            for item in made
            for g in rng.choice(genres, size=rng.integers(1, 4), replace=False)
        )


def _percentiles(fn, args: list) -> tuple[float, float]:
    times = []
    for a in args:
        started = time.perf_counter()
        fn(a)
        times.append(time.perf_counter() - started)
    times.sort()
    p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
    return statistics.median(times) * 1000, p99 * 1000


def _publish_content(version: str) -> str:
    """Fit and compute the content rows of a version holding only those, then make it
    live; returns the stage's figures."""
    from recommendations import build, cold_start, store

    r = store.client()
    cpu, wall = time.process_time(), time.perf_counter()
    arrays = build.snapshot_arrays(build.snapshot_ratings(), build.snapshot_list_context())
    snap_cpu = time.process_time() - cpu
    cpu = time.process_time()
    n = cold_start.content_fit(version, arrays, ttl=None)
    fit_cpu = time.process_time() - cpu
    cpu, wall = time.process_time(), time.perf_counter()
    for _, start, stop in cold_start.content_plan(version, n, 4):
        cold_start.content_shard(version, start, stop, ttl=None)
    rows_cpu, rows_wall = time.process_time() - cpu, time.perf_counter() - wall
    size = sum(
        r.memory_usage(store.version_key(version, name), samples=0) or 0
        for name in ("ic", "icf", "icx", "content")
    )
    r.set(store.version_key(version, "meta"), json.dumps({"version": version}))
    r.set(store.key("live"), version)
    store._live_cache.clear()
    return (
        f"fit {fit_cpu:6.2f} CPU s (snapshot {snap_cpu:5.2f})  rows {rows_cpu:6.1f} CPU s"
        f" {rows_wall:6.1f} s wall  Redis {size / 2**20:6.1f} MiB"
    )


def _measure(label: str, reads_n: int, round_no: int) -> None:
    import numpy as np
    from django.contrib.auth import get_user_model

    from accounts.models import GenrePick
    from catalog import services
    from catalog.models import Genre, Item
    from recommendations import cold_start, reads

    n = Item.objects.filter(is_active=True).count()
    rows = hasattr(cold_start, "content_fit")
    if rows:
        stage = _publish_content(f"bench-{round_no}")
    else:  # the per-process index of a checkout before content rows
        cpu = time.process_time()
        cold_start.clear()
        cold_start.content_index()
        stage = f"rebuild {time.process_time() - cpu:6.2f} CPU s (once per process and change)"
    ids = Item.objects.values_list("pk", flat=True)
    picks = np.random.default_rng(1).choice(list(ids), size=reads_n)
    items = {i.pk: i for i in Item.objects.filter(pk__in=picks.tolist())}
    also = _percentiles(lambda pk: reads.similar_items(item=items[pk], limit=10), picks.tolist())
    assert reads.similar_items(item=items[int(picks[0])], limit=10)
    user, _ = get_user_model().objects.get_or_create(username=f"bench-newcomer-{round_no}")
    for name in ("Sci-Fi", "Drama"):
        GenrePick.objects.get_or_create(user=user, genre=Genre.objects.get(name=name))
    top = Item.objects.order_by("-rating_count").first()
    services.rating_upsert(user=user, item=top, score=5)
    result = reads.recommendations_for_user(user=user, limit=10)
    assert result.source == reads.CONTENT, result
    starter = _percentiles(
        lambda _: reads.recommendations_for_user(user=user, limit=10), range(reads_n)
    )
    update = ""
    if rows:
        times = []
        for k in range(5):
            new = Item.objects.create(title=f"{top.title} Part {k + 2}", year=top.year)
            new.genres.set(top.genres.all())
            started = time.perf_counter()
            cold_start.content_item_update(item_ids=[new.pk])
            times.append(time.perf_counter() - started)
        shown = [s.item.pk for s in reads.similar_items(item=new, limit=10)]
        assert shown, "the new item has no panel"
        update = f"  item update {statistics.median(times) * 1000:6.1f} ms"
    print(
        f"{label:10} {n:7,d} items  {stage}\n"
        f"{'':10} also liked p50 {also[0]:6.2f} ms p99 {also[1]:6.2f} ms"
        f"  starter p50 {starter[0]:6.2f} ms p99 {starter[1]:6.2f} ms{update}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=62_423)
    parser.add_argument("--reads", type=int, default=300)
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="recsite-cold-"))
    try:
        with private_site(folder):
            _measure("demo", options.reads, 1)
            _grow(options.items)
            _measure("synthetic", options.reads, 2)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
