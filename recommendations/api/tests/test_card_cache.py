"""A stored read of me/recommendations/ takes its cards' titles, years and genres from a
per-process cache kept under the catalogue's generation in Redis (catalog.cards,
catalog.selectors.item_cards), and only the live parts from the database. Every write that
can change a cached part starts a new generation (recommendations.receivers)."""

from io import StringIO

import pytest
import redis
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from catalog import selectors as catalog_selectors
from catalog.api.serializers import ItemSerializer
from catalog.cards import STATIC_MAX_AGE, STATIC_MAX_ITEMS, StaticParts
from catalog.models import Genre, Item, Rating
from catalog.services import rating_upsert
from catalog.signals import catalogue_changed
from catalog.tests.factories import UserFactory
from recommendations import store
from recsite import redis_server

pytestmark = pytest.mark.django_db

URL = "/api/v1/me/recommendations/"


def _generation():
    return store.client().get(store.key("catalogue"))


def _results(client):
    body = client.get(URL, {"limit": 10}).json()
    assert body["source"] == "personal"
    return body["results"]


def test_a_stored_read_shows_what_uncached_cards_show_without_the_genre_joins(reader):
    _results(reader)  # fills this process's cache
    with CaptureQueriesContext(connection) as queries:
        results = _results(reader)
    cards = catalog_selectors.item_cards([r["item"]["id"] for r in results])  # uncached
    assert [r["item"] for r in results] == [
        ItemSerializer().to_representation(cards[r["item"]["id"]]) for r in results
    ]
    assert any(r["item"]["genres"] for r in results)
    item_statements = [q["sql"] for q in queries.captured_queries if "rating_count" in q["sql"]]
    assert len(item_statements) == 1 and "JOIN" not in item_statements[0].upper()


def test_counts_and_averages_stay_live_while_titles_are_cached(reader):
    first = _results(reader)[0]["item"]
    other = UserFactory(username="someone-else")
    rating_upsert(user=other, item=Item.objects.get(pk=first["id"]), score=0.5)
    now = _results(reader)[0]["item"]
    assert now["id"] == first["id"]  # another user's rating: still the stored list
    assert now["count"] == first["count"] + 1
    total = first["average"] * first["count"] + 0.5
    assert now["average"] == pytest.approx(total / now["count"])


def test_a_process_keeps_its_titles_until_another_process_starts_a_new_generation(
    reader, redis_url
):
    item_id = _results(reader)[0]["item"]["id"]
    title = Item.objects.get(pk=item_id).title
    # A write that sends no signal (as from another process, which bumps on its own).
    Item.objects.filter(pk=item_id).update(title="Renamed elsewhere")
    assert _results(reader)[0]["item"]["title"] == title  # the cache is what serves it
    redis.Redis.from_url(redis_url).set(store.key("catalogue"), b"another-process")
    assert _results(reader)[0]["item"]["title"] == "Renamed elsewhere"


def test_an_emptied_redis_starts_a_new_generation(reader):
    _results(reader)
    before = _generation()
    store.client().delete(store.key("catalogue"))
    assert store.catalogue_generation() not in (None, before)


def _save_title(item):
    item.title = "A new title"
    item.save()


def _admin_edit(item):
    admin = UserFactory(username="cards-admin", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    genre = Genre.objects.exclude(items=item).first()
    response = client.post(
        f"/admin/catalog/item/{item.pk}/change/",
        {
            "title": "Edited in the admin",
            "year": item.year or "",
            "description": item.description,
            "genres": [genre.pk],
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Item.objects.get(pk=item.pk).title == "Edited in the admin"


def _genres_set(item):
    item.genres.set([Genre.objects.exclude(items=item).first()])


def _genres_clear(item):
    item.genres.clear()


def _genre_renamed(item):
    genre = item.genres.first()
    genre.name, genre.slug = "Renamed genre", "renamed-genre"
    genre.save()


def _genre_deleted(item):
    item.genres.first().delete()  # its links go by cascade, which sends no m2m signal


def _item_deleted(item):
    item.delete()


def _bulk_write_announced(item):
    Item.objects.filter(pk=item.pk).update(title="Bulk")
    catalogue_changed.send(sender=Item)


def _imported(item, tmp_path):
    folder = tmp_path / "ml-latest"
    folder.mkdir()
    (folder / "movies.csv").write_text("movieId,title,genres\n1,Imported (2003),Western\n")
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.5,1\n")
    call_command("import_ratings", str(folder), verbosity=0, stdout=StringIO())
    assert Item.objects.filter(external_id="mllatest:1").exists()


@pytest.mark.parametrize(
    "edit",
    [
        _save_title,
        _admin_edit,
        _genres_set,
        _genres_clear,
        _genre_renamed,
        _genre_deleted,
        _item_deleted,
        _bulk_write_announced,
        _imported,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_every_catalogue_edit_path_starts_a_new_generation(reader, edit, tmp_path):
    item = Item.objects.filter(genres__isnull=False).order_by("pk").first()
    _results(reader)
    before = _generation()
    assert before is not None
    if edit is _imported:
        edit(item, tmp_path)
    else:
        edit(item)
    assert _generation() != before


def test_an_edit_also_ends_the_generation_after_its_commit(
    reader, django_capture_on_commit_callbacks
):
    item = Item.objects.order_by("pk").first()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _save_title(item)
        assert _generation() is None  # ended at once
        # A reader before the commit starts a generation, and may cache the old title...
        assert store.catalogue_generation() is not None
    assert callbacks and _generation() is None  # ...which the commit ends again


def test_ratings_do_not_start_a_new_generation(reader):
    before = _generation()
    other = UserFactory(username="rater")
    rating_upsert(user=other, item=Item.objects.order_by("pk").first(), score=4.0)
    Rating.objects.filter(user=other).delete()
    assert _generation() == before


def test_an_edit_with_redis_away_is_saved_and_does_not_raise(reader):
    dead = f"redis://127.0.0.1:{redis_server.free_port()}/0"
    item = Item.objects.order_by("pk").first()
    store._client_for.cache_clear()
    try:
        with override_settings(REDIS_URL=dead):
            _save_title(item)
    finally:
        store._client_for.cache_clear()
    assert Item.objects.get(pk=item.pk).title == "A new title"


def test_kept_parts_go_with_another_generation_age_or_size():
    kept = StaticParts()
    parts = kept.under("g1", now=100.0)
    parts[1] = ("Title", 2001, ())
    assert kept.under("g1", now=100.0 + STATIC_MAX_AGE / 2) == {1: ("Title", 2001, ())}
    assert kept.under("g2", now=101.0) == {}  # another generation
    kept.under("g2", now=101.0)[1] = ("Title", 2001, ())
    assert kept.under("g2", now=101.0 + STATIC_MAX_AGE + 1) == {}  # too old
    big = kept.under("g3", now=200.0)
    big.update(dict.fromkeys(range(STATIC_MAX_ITEMS + 1), ("t", None, ())))
    assert kept.under("g3", now=200.0) == {}  # too many
