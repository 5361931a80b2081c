"""What cold start costs: rebuilding the content model, and one request's share of it.

    python bench/cold_start.py [--items 62423] [--repeat 3]

Starts a private ``redis-server`` (for the catalogue stamp) on a free loopback port, seeds
a fresh SQLite database in a temporary folder with ``seed_demo`` (2,000 items), then, at
2,000 items and again after adding synthetic items up to ``--items`` (default 62,423,
the number of movies in MovieLens 25M; titles from the demo's words, a year, one to
three of its genres), prints the median of ``--repeat`` runs of:

- ``rebuild``: ``cold_start.build_index()``, what every process pays once after a
  catalogue change (reading the catalogue, then TF-IDF);
- ``also liked``: ``reads.similar_items`` for the most rated item (no model published, so
  the whole panel is content), the content index already built;
- ``item newer than the index``: ``reads.similar_items`` for an item added without a
  signal, so matched by its own tokens against the index as it is;
- ``starter``: ``reads.recommendations_for_user`` for a user with two genre picks and one
  5-star rating.

Needs redis-server on the PATH.
"""

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.private_site import private_site  # noqa: E402


def _median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _grow(total: int) -> None:
    """Add synthetic items (bulk, like an import) until the catalogue holds ``total``."""
    import numpy as np

    from catalog.models import Genre, Item
    from catalog.signals import catalogue_changed

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
    catalogue_changed.send(sender=Item)


def _measure(label: str, repeat: int) -> None:
    from django.contrib.auth import get_user_model

    from accounts.models import GenrePick
    from catalog import services
    from catalog.models import Genre, Item
    from recommendations import cold_start, reads
    from recommendations.item_info import catalogue_item_info

    n = Item.objects.filter(is_active=True).count()
    read = _median_seconds(catalogue_item_info, repeat)
    rebuild = _median_seconds(cold_start.build_index, repeat)
    cold_start.clear()
    cold_start.content_index()
    item = Item.objects.order_by("-rating_count").first()
    also = _median_seconds(lambda: reads.similar_items(item=item, limit=8), repeat)
    user, _ = get_user_model().objects.get_or_create(username="bench-newcomer")
    for name in ("Sci-Fi", "Drama"):
        GenrePick.objects.get_or_create(user=user, genre=Genre.objects.get(name=name))
    services.rating_upsert(user=user, item=item, score=5)
    cold_start.content_index()
    result = reads.recommendations_for_user(user=user, limit=10)
    assert result.source == reads.CONTENT, result
    starter = _median_seconds(lambda: reads.recommendations_for_user(user=user, limit=10), repeat)
    # An item the index does not have yet (bulk-created, no signal): matched by its tokens.
    fresh = Item.objects.bulk_create([Item(title=f"{item.title} Returns", year=item.year)])[0]
    newer = _median_seconds(lambda: reads.similar_items(item=fresh, limit=8), repeat)
    print(
        f"{label:10} {n:7,d} items  rebuild {rebuild:6.2f} s (catalogue read {read:5.2f} s)"
        f"  also liked {also * 1000:6.1f} ms  (item newer than the index {newer * 1000:6.1f} ms)"
        f"  starter {starter * 1000:6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=62_423)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="recsite-cold-"))
    try:
        with private_site(folder):
            _measure("demo", options.repeat)
            _grow(options.items)
            _measure("synthetic", options.repeat)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
