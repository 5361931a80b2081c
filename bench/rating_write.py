"""The database side of a rating: ``rating_create_or_replace`` in-process, without HTTP.

    DATABASE_URL=postgres://... python bench/rating_write.py [--ratings 300] [--seed 0]

Rates ``--ratings`` (user, item) pairs the database does not hold yet (users and items of
the database's own, e.g. a ``bench/scale.py`` import), each in its own transaction as the
API's PUT does, then removes them again (so a run can be repeated on the same data).
Prints the wall time per rating p50/p95, the statements per rating (Django's log of them,
BEGIN and COMMIT included on PostgreSQL) and, on PostgreSQL, how many of the item table's updates
were HOT (written without touching an index). bench/scale.py's stream measures the whole
path; this isolates the database's share, which the stream's numbers on a loaded machine
bury under the workers' CPU.
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from catalog import services
    from catalog.models import Item, Rating
    from catalog.signals import rating_changed

    rating_changed.receivers = []  # the database's share only: no broker, no Redis
    rng = random.Random(args.seed)
    users = list(get_user_model().objects.order_by("pk").values_list("pk", flat=True)[:5000])
    items = {i.pk: i for i in Item.objects.filter(is_active=True).order_by("-rating_count")[:3000]}
    pairs = set()
    while len(pairs) < args.ratings:
        pairs.add((rng.choice(users), rng.choice(list(items))))
    taken = set(
        Rating.objects.filter(user_id__in={u for u, _ in pairs}).values_list("user_id", "item_id")
    )
    pairs = sorted(pairs - taken)
    User = get_user_model()
    people = User.objects.in_bulk([u for u, _ in pairs])

    def item_updates():
        if connection.vendor != "postgresql":
            return (0, 0)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_force_next_flush()")
            cursor.execute(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = %s",
                [Item._meta.db_table],
            )
            return cursor.fetchone()

    before = item_updates()
    ms, statements = [], []
    for user_id, item_id in pairs:
        with CaptureQueriesContext(connection) as queries:
            began = time.perf_counter()
            services.rating_create_or_replace(
                user=people[user_id], item=items[item_id], score=rng.randrange(1, 11) / 2
            )
            ms.append((time.perf_counter() - began) * 1000)
        statements.append(len(queries.captured_queries))
    time.sleep(0.5)
    after = item_updates()
    for user_id, item_id in pairs:
        services.rating_delete(user=people[user_id], item=items[item_id])
    ms.sort()
    print(
        f"{len(ms)} new ratings on {connection.vendor}: p50 {statistics.median(ms):.1f} ms, "
        f"p95 {ms[int(0.95 * (len(ms) - 1))]:.1f} ms; statements per rating "
        f"{statistics.median(statements):g}; item table updates "
        f"{after[0] - before[0]}, HOT {after[1] - before[1]}"
    )


if __name__ == "__main__":
    main()
