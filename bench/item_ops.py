"""What the writes that touch ratings by item cost with no index of the ratings by item.

    python bench/item_ops.py --database-url sqlite:///var/scale/10M.sqlite3
    python bench/item_ops.py --database-url postgres://postgres@127.0.0.1:PORT/scale_10m

On a database ``bench/scale.py``'s import step filled (it is changed: users and items are
deleted), each timed ``--repeat`` times (wall seconds of the transaction, commit included,
and the 1-minute load average before each):

- ``item_stats_refresh()`` of every item: one grouped scan of the ratings (writes nothing
  when the stats are in step, as after an import);
- ``accounts.services.account_delete`` of the users with the most ratings (each run a
  different user), and how many ratings and items it moved;
- an item's deletion as the admin's ``delete_model`` does it (``Item.delete()`` in one
  transaction: the cascade to its ratings, then the item; on both databases the foreign
  key's own check of the ratings table too), of the most rated items (each run another);
- ``admin``: pages of the admin that read ratings by item: the ratings list searched by
  the title of the least rated item (the search joins ratings to items: a scan until a
  page is found), and an item's delete confirmation page (which lists its ratings), of
  the most rated item;
- ``--with-item-index`` first builds the old ``(item_id, updated DESC)`` index (timed) and
  drops it at the end, to measure the same operations with it, for comparison.

Redis is not reached (an unused port): the signals' Redis writes fail at once, as with
Redis down; ``rating_changed``'s receivers are disconnected (an account deletion announces
each rating after its commit, for the pipeline's queue: not the database's time). Prints
one JSON line per measurement and a summary (medians).
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

INDEX = "rating_item_recent_idx"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--with-item-index", action="store_true")
    parser.add_argument("--steps", default="refresh,admin,account,item")
    args = parser.parse_args()
    from recsite.redis_server import free_port

    os.environ.update(
        DJANGO_SETTINGS_MODULE="recsite.settings.base",
        DEBUG="0",
        SECRET_KEY="bench-only-not-a-secret",
        DATABASE_URL=args.database_url,
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        LOG_LEVEL="ERROR",
        ALLOWED_HOSTS="testserver",
        SECURE_SSL_REDIRECT="0",
        SECURE_HSTS_SECONDS="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
    )
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from accounts.services import account_delete
    from bench.conditions import product_commit
    from catalog.models import Item, Rating
    from catalog.services import item_stats_refresh
    from catalog.signals import rating_changed

    rating_changed.receivers = []

    rating = connection.ops.quote_name(Rating._meta.db_table)
    results = []

    def record(name, seconds, **extra):
        row = {
            "step": name,
            "seconds": round(seconds, 3),
            "load": round(os.getloadavg()[0], 1),
            **extra,
        }
        results.append(row)
        print(json.dumps(row), flush=True)

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {rating}")
        n_ratings = cursor.fetchone()[0]
    print(
        json.dumps(
            {
                "vendor": connection.vendor,
                "ratings": n_ratings,
                "with_item_index": args.with_item_index,
                "product": product_commit(),
                "at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            }
        ),
        flush=True,
    )
    if args.with_item_index:
        load = os.getloadavg()[0]
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {INDEX} ON {rating} (item_id, updated DESC)"
            )
        record("build the item index", time.perf_counter() - started, load_before=load)
    try:
        steps = args.steps.split(",")
        if "refresh" in steps:
            for _ in range(args.repeat):
                load = os.getloadavg()[0]
                started = time.perf_counter()
                with transaction.atomic():
                    changed = item_stats_refresh()
                record(
                    "item_stats_refresh (all items)",
                    time.perf_counter() - started,
                    load_before=load,
                    changed=changed,
                )
        if "admin" in steps:
            from django.conf import settings
            from django.test import Client
            from django.test.utils import override_settings
            from django.urls import reverse

            # Pages render without collected static files (no manifest needed).
            plain = "django.contrib.staticfiles.storage.StaticFilesStorage"
            override_settings(
                STORAGES={**settings.STORAGES, "staticfiles": {"BACKEND": plain}}
            ).enable()

            client = Client()
            boss = get_user_model().objects.filter(username="bench-item-ops").first()
            if boss is None:
                boss = get_user_model().objects.create_superuser("bench-item-ops", password="x")
            client.force_login(boss)
            rare = Item.objects.filter(rating_count__gt=0).order_by("rating_count", "pk").first()
            popular = Item.objects.order_by("-rating_count", "pk").first()
            pages = [
                ("admin: ratings searched by a title", reverse("admin:catalog_rating_changelist"),
                 {"q": rare.title}, rare.rating_count),
                ("admin: item delete confirmation", reverse("admin:catalog_item_delete",
                 args=[popular.pk]), {}, popular.rating_count),
            ]  # fmt: skip
            for name, url, query, ratings in pages:
                for _ in range(args.repeat):
                    load = os.getloadavg()[0]
                    started = time.perf_counter()
                    response = client.get(url, query)
                    record(
                        name,
                        time.perf_counter() - started,
                        load_before=load,
                        status=response.status_code,
                        bytes=len(response.content),
                        ratings=ratings,
                    )
        if "account" in steps:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT user_id, COUNT(*) AS n FROM {rating} GROUP BY user_id "
                    "ORDER BY n DESC, user_id LIMIT %s",
                    [args.repeat],
                )
                heavy = cursor.fetchall()
            for user_id, n in heavy:
                user = get_user_model().objects.get(pk=user_id)
                load = os.getloadavg()[0]
                started = time.perf_counter()
                removed = account_delete(user=user)  # its own transaction
                record(
                    "account_delete",
                    time.perf_counter() - started,
                    load_before=load,
                    ratings=removed,
                    had=n,
                )
        if "item" in steps:
            for item in list(Item.objects.order_by("-rating_count", "pk")[: args.repeat]):
                load = os.getloadavg()[0]
                started = time.perf_counter()
                with transaction.atomic():
                    item.delete()
                record(
                    "item delete (admin's delete_model)",
                    time.perf_counter() - started,
                    load_before=load,
                    ratings=item.rating_count,
                )
    finally:
        if args.with_item_index:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP INDEX IF EXISTS {INDEX}")
    summary = {}
    for row in results:
        summary.setdefault(row["step"], []).append(row["seconds"])
    print(
        json.dumps(
            {
                "summary": {
                    step: {"median": statistics.median(s), "runs": s} for step, s in summary.items()
                }
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
