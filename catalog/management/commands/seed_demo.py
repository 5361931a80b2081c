import secrets

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from tqdm import tqdm

from catalog import demo_data
from catalog.importers.loader import ratings_bulk_upsert
from catalog.models import Genre, Item
from catalog.services import item_stats_refresh
from catalog.signals import catalogue_changed

NAMESPACE = "demo"


class Command(BaseCommand):
    help = (
        "Fill an empty database with a deterministic synthetic catalogue (items, genres, "
        "users with genre tastes, long-tailed ratings), a demo login and a staff login."
    )

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=2000)
        parser.add_argument("--users", type=int, default=600)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when any item exists"
        )
        parser.add_argument("--demo-password", default=None, help="default: 'demo' with DEBUG")
        parser.add_argument("--admin-password", default=None, help="default: 'admin' with DEBUG")

    def handle(self, *args, items, users, seed, if_empty, demo_password, admin_password, **opts):
        if Item.objects.exists():
            if if_empty:
                self.stdout.write("The catalogue already has items; not seeding.")
                return
            raise CommandError("The catalogue already has items; seed_demo fills an empty one.")
        if items < 10 or users < 10:
            raise CommandError("--items and --users must each be at least 10.")
        # Known passwords only on a developer's machine; elsewhere random and printed once.
        demo_password = demo_password or ("demo" if settings.DEBUG else secrets.token_urlsafe(9))
        admin_password = admin_password or ("admin" if settings.DEBUG else secrets.token_urlsafe(9))
        catalogue = demo_data.build(n_items=items, n_users=users, seed=seed)
        with transaction.atomic():
            n_ratings = self._write(catalogue, demo_password, admin_password, opts["verbosity"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {len(catalogue.items)} items, {catalogue.n_users} users and "
                f"{n_ratings} ratings."
            )
        )
        self.stdout.write(f"Demo login:  demo / {demo_password}")
        self.stdout.write(f"Staff login: admin / {admin_password} (for /admin/)")

    def _write(self, catalogue, demo_password, admin_password, verbosity) -> int:
        User = get_user_model()
        genres = {
            name: Genre.objects.get_or_create(name=name, defaults={"slug": slugify(name)})[0]
            for name in demo_data.GENRES
        }
        made = Item.objects.bulk_create(
            Item(
                title=item.title,
                year=item.year,
                description=item.description,
                external_id=f"{NAMESPACE}:{number}",
            )
            for number, item in enumerate(catalogue.items)
        )
        links = Item.genres.through
        links.objects.bulk_create(
            links(item_id=row.pk, genre_id=genres[name].pk)
            for row, item in zip(made, catalogue.items, strict=True)
            for name in item.genres
        )
        catalogue_changed.send(sender=Item)  # bulk writes send no model signals
        people = User.objects.bulk_create(
            User(username=f"{NAMESPACE}-{number}", password="!")
            for number in range(catalogue.n_users)
        )
        item_pks = np.fromiter((row.pk for row in made), dtype=np.int64)
        user_pks = np.fromiter((row.pk for row in people), dtype=np.int64)
        rows = list(
            zip(
                user_pks[catalogue.rating_user].tolist(),
                item_pks[catalogue.rating_item].tolist(),
                catalogue.rating_score.tolist(),
                catalogue.rating_time,
                strict=True,
            )
        )
        total = len(rows)
        with tqdm(total=total, desc="ratings", disable=verbosity < 1) as bar:
            for start in range(0, total, 5000):
                batch = rows[start : start + 5000]
                ratings_bulk_upsert({(u, i): (t, s) for u, i, s, t in batch})
                bar.update(len(batch))
        item_stats_refresh()
        demo = User.objects.create_user("demo", password=demo_password)
        self._rate_as_demo(demo, catalogue, made)
        User.objects.create_superuser("admin", password=admin_password)
        return total

    def _rate_as_demo(self, demo, catalogue, made):
        """Give the demo login a Sci-Fi and Action taste so its panels have something to say.

        Written like the other seeded ratings, in bulk: no rating's incremental update is
        queued (under ``make run`` the seed runs before Redis is up, and the first full
        recompute, which a worker starts when it finds no model, covers every rating).
        """
        loved = {"Sci-Fi", "Action"}
        popular = Item.objects.filter(pk__in=[row.pk for row in made]).order_by("-rating_count")
        rows = {}  # (user, item) -> (time, score), each at the moment it is picked
        for item in popular.prefetch_related("genres")[:300]:
            names = {genre.name for genre in item.genres.all()}
            if names & loved and len(rows) < 12:
                rows[demo.pk, item.pk] = (timezone.now(), 5.0 if len(rows) % 3 else 4.5)
            elif not names & loved and names & {"Romance", "Documentary"} and len(rows) < 15:
                rows[demo.pk, item.pk] = (timezone.now(), 2.0)
            if len(rows) >= 15:
                break
        ratings_bulk_upsert(rows)
        item_stats_refresh(item_ids=[item_pk for _, item_pk in rows])
