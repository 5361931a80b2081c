"""Cold start through the pages and the API: an item nobody rated has an "also liked"
panel at once and shows in its neighbours' panels; a new user's genre picks (or one or
two ratings) give a list of their own at once, with reasons that reveal nobody's rating."""

import re

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import GenrePick
from catalog import services as catalog_services
from catalog.models import Genre, Item
from catalog.tests.factories import ItemFactory, UserFactory
from recommendations import cold_start, pipeline, reads, reasons, store

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(rec_redis, demo_catalogue):
    run = pipeline.recompute_sync()
    assert run.version, run.error
    return run


def _panel(page: str, panel_id: str) -> str:
    start = page.index(f'id="{panel_id}"')
    return page[start : page.index("</section>", start)]


def _reasons(panel: str) -> list[str]:
    return [" ".join(r.split()) for r in re.findall(r'class="reason"[^>]*>(.*?)</', panel, re.S)]


def _added(item: Item) -> Item:
    """Run the content update the save queued (after commit), as the worker would."""
    assert store.client().exists(store.key("content-queued", item.pk)), "nothing queued"
    assert cold_start.content_item_update(item_ids=[item.pk]) is not None
    return item


def _like(item: Item, title: str, capture) -> Item:
    """A new item (no ratings) sharing ``item``'s genres and year, as staff add one."""
    with capture(execute=True):
        new = Item.objects.create(title=title, year=item.year)
        new.genres.set(item.genres.all())
    return _added(new)


def _row(item_id: int):
    raw = store.client().hget(store.version_key(store.live_model().version, "ic"), item_id)
    return None if raw is None else store.decode_neighbours(raw)


# -- items ------------------------------------------------------------------------------
def test_an_item_nobody_rated_has_a_similar_items_panel_at_once(
    client, published, django_capture_on_commit_callbacks
):
    """Added after the recompute, with no rating: the panel (page and API) lists items of
    its genres by content, each saying what it shares, before any recompute."""
    known = Item.objects.order_by("-rating_count").first()
    new = _like(known, "Quantum Harbour", django_capture_on_commit_callbacks)
    page = client.get(new.get_absolute_url()).content.decode()
    panel = _panel(page, "panel-also-liked")
    assert 'data-source="content"' in panel and "Similar items" in panel
    lines = _reasons(panel)
    assert len(lines) == panel.count('class="card suggestion"') >= 4
    genre = known.genres.order_by("name").first().name
    assert all(line.startswith(("Also", "New, not rated yet")) for line in lines), lines
    assert any(genre in line for line in lines), lines

    body = APIClient().get(f"/api/v1/items/{new.pk}/similar/", {"limit": 8}).json()
    assert len(body) >= 4
    assert {row["source"] for row in body} == {"content"}
    assert all(row["support"] is None and row["reason"] for row in body)
    assert new.pk not in [row["item"]["id"] for row in body]


def test_a_new_item_takes_a_labelled_place_in_a_similar_items_panel(
    client, published, django_capture_on_commit_callbacks
):
    """An existing item's panel (collaborative) gets a "New" place for a close item
    nobody has rated, on the page and in the API; without it the place is not there."""
    known = Item.objects.order_by("-rating_count").first()
    before = APIClient().get(f"/api/v1/items/{known.pk}/similar/", {"limit": 8}).json()
    assert before and before[0]["source"] == "personal"
    new = _like(known, f"{known.title} Returns", django_capture_on_commit_callbacks)

    body = APIClient().get(f"/api/v1/items/{known.pk}/similar/", {"limit": 8}).json()
    assert len(body) == 8
    row = next(r for r in body if r["item"]["id"] == new.pk)
    assert row["source"] == "content" and row["item"]["count"] == 0
    assert row["reason"].startswith("New, not rated yet: also")
    assert body[0]["source"] == "personal"  # the collaborative list still comes first

    page = client.get(known.get_absolute_url()).content.decode()
    panel = _panel(page, "panel-also-liked")
    assert "People who rated this also rated" in panel
    assert f'data-card-item="{new.pk}"' in panel
    assert "New, not rated yet: also" in panel


def test_an_item_with_few_people_gets_content_in_the_empty_places(published):
    """Collaborative neighbours first; content fills the panel to its size."""
    item = Item.objects.filter(rating_count__gte=1).order_by("rating_count", "id").first()
    collaborative = [s for s in reads.similar_items(item=item, limit=50) if s.source == "personal"]
    assert len(collaborative) < 50
    similar = reads.similar_items(item=item, limit=len(collaborative) + 3)
    assert len(similar) == len(collaborative) + 3
    assert [s.source for s in similar[: len(collaborative)]] == ["personal"] * len(collaborative)
    assert {s.source for s in similar[len(collaborative) :]} == {"content"}


def test_a_new_item_is_never_shown_to_someone_who_hid_it(
    client, published, django_capture_on_commit_callbacks
):
    known = Item.objects.order_by("-rating_count").first()
    new = _like(known, "Hidden Harbour", django_capture_on_commit_callbacks)
    user = UserFactory()
    catalog_services.item_hide(user=user, item=new)
    client.force_login(user)
    panel = _panel(client.get(known.get_absolute_url()).content.decode(), "panel-also-liked")
    assert f'data-card-item="{new.pk}"' not in panel


def test_the_recompute_stores_a_content_row_for_every_active_item(published):
    """Rated or not, each active item has its row; neighbours carry their rating counts."""
    version = store.live_model().version
    rows = dict(store.read_rows(version, "ic"))
    active = set(Item.objects.filter(is_active=True).values_list("pk", flat=True))
    assert set(rows) == active
    counts = dict(Item.objects.values_list("pk", "rating_count"))
    row = store.decode_neighbours(rows[Item.objects.order_by("-rating_count").first().pk])
    assert 0 < row.size <= cold_start.ROW_K + cold_start.NEW_K
    assert [counts[int(i)] for i in row["id"]] == row["support"].tolist()
    assert np.all(np.diff(row["score"]) <= 0)


def test_the_update_of_an_unchanged_item_writes_the_row_the_recompute_wrote(published):
    """The per-item task (one product against the stored features) and the recompute's
    shards (the engine's top-k kernel) compute the same row, and nothing else moves."""
    version = store.live_model().version
    before = dict(store.read_rows(version, "ic"))
    item = Item.objects.order_by("-rating_count")[3]
    assert cold_start.content_item_update(item_ids=[item.pk]) == version
    after = dict(store.read_rows(version, "ic"))
    a, b = store.decode_neighbours(before[item.pk]), store.decode_neighbours(after[item.pk])
    assert a["id"].tolist() == b["id"].tolist()
    np.testing.assert_allclose(a["score"], b["score"], atol=1e-6)
    changed = [
        i
        for i in before
        if not np.allclose(
            store.decode_neighbours(before[i])["score"],
            store.decode_neighbours(after[i])["score"],
            atol=1e-6,
        )
        or store.decode_neighbours(before[i])["id"].tolist()
        != store.decode_neighbours(after[i])["id"].tolist()
    ]
    assert changed == []


def test_an_item_given_other_genres_moves_to_its_new_neighbours(
    published, django_capture_on_commit_callbacks
):
    """Its own row follows its new genres, and it enters the rows of items of those."""
    scifi, drama = Genre.objects.get(name="Sci-Fi"), Genre.objects.get(name="Drama")
    item = Item.objects.filter(genres=drama).exclude(genres=scifi).order_by("-rating_count")[0]

    def scifi_among_first(n):
        first = Item.objects.filter(pk__in=_row(item.pk)["id"][:n].tolist())
        return sum(scifi in other.genres.all() for other in first)

    assert scifi_among_first(5) <= 1
    with django_capture_on_commit_callbacks(execute=True):
        item.genres.set([scifi])
    _added(item)
    assert scifi_among_first(5) >= 4  # (one may share a title word instead)
    row = _row(item.pk)
    others = [int(i) for i in row["id"][:5]]
    assert any(item.pk in _row(other)["id"].tolist() for other in others)


def test_a_second_new_item_is_matched_with_the_first(published, django_capture_on_commit_callbacks):
    """Items added since the recompute are scored against each other, not only against
    the items the recompute saw."""
    known = Item.objects.order_by("-rating_count").first()
    first = _like(known, "Harbour Lights", django_capture_on_commit_callbacks)
    second = _like(known, "Harbour Lights Again", django_capture_on_commit_callbacks)
    assert first.pk in _row(second.pk)["id"].tolist()
    assert second.pk in _row(first.pk)["id"].tolist()  # offered to the first's row too


def test_saving_items_queues_one_update_each_after_commit(
    published, django_capture_on_commit_callbacks, monkeypatch
):
    from recommendations import tasks

    queued = []
    monkeypatch.setattr(
        tasks.content_item_update, "apply_async", lambda args, **kw: queued.append(args[0])
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        item = ItemFactory(title="Brand New")
        item.genres.add(Genre.objects.first())
    assert queued == [] and callbacks  # nothing before commit
    for callback in callbacks:
        callback()
    assert queued == [[item.pk]]  # saved, then given a genre: one update waits
    with django_capture_on_commit_callbacks(execute=True):
        Genre.objects.first().items.add(Item.objects.exclude(pk=item.pk).first())
    assert len(queued) == 2


def test_a_content_row_read_costs_a_redis_read_not_a_model_build(published, monkeypatch):
    """At 62,423 items (MovieLens 25M's count; added in bulk after the recompute), the
    item page and the API read one stored row: no content model is fitted, no catalogue
    read in the web process, and the queries are those of the 150-item catalogue."""
    from recommendations import content_rows, item_info
    from recommendations.engine import content

    item = Item.objects.order_by("-rating_count").first()
    url = f"/api/v1/items/{item.pk}/similar/"
    with CaptureQueriesContext(connection) as small:
        APIClient().get(url, {"limit": 30})
    genre = Genre.objects.first()
    made = Item.objects.bulk_create(
        Item(title=f"Synthetic {k}", year=1990 + k % 30, external_id=f"bench:{k}")
        for k in range(62_423 - Item.objects.count())
    )
    Item.genres.through.objects.bulk_create(
        Item.genres.through(item_id=m.pk, genre_id=genre.pk) for m in made
    )
    assert Item.objects.count() == 62_423

    def forbidden(*args, **kwargs):
        raise AssertionError("a request built a content model")

    monkeypatch.setattr(content.ItemContent, "fit", forbidden)
    monkeypatch.setattr(content_rows.ContentModel, "fit", forbidden)
    monkeypatch.setattr(content_rows, "content_rows", forbidden)
    monkeypatch.setattr(item_info, "catalogue_item_info", forbidden)
    monkeypatch.setattr(cold_start, "catalogue_item_info", forbidden)
    monkeypatch.setattr(cold_start, "content_model", forbidden)
    similar = reads.similar_items(item=item, limit=30)
    assert {s.source for s in similar} == {reads.PERSONAL, reads.CONTENT}
    with CaptureQueriesContext(connection) as big:
        body = APIClient().get(url, {"limit": 30}).json()
    assert [r["item"]["id"] for r in body] == [s.item.pk for s in similar]
    assert len(big) == len(small)


# -- people -------------------------------------------------------------------------------
@pytest.fixture
def newcomer(published):
    """A new account that picked Sci-Fi and has rated nothing."""
    user = UserFactory(username="newcomer")
    GenrePick.objects.create(user=user, genre=Genre.objects.get(name="Sci-Fi"))
    return user


def test_a_new_user_with_genres_gets_their_own_list_not_the_popular_one(client, newcomer):
    popular = reads.popular_items(limit=10)
    result = reads.recommendations_for_user(user=newcomer, limit=10)
    assert result.source == reads.CONTENT and len(result.suggestions) == 10
    assert [s.item.pk for s in result.suggestions] != [s.item.pk for s in popular.suggestions]
    scifi = set(Genre.objects.get(name="Sci-Fi").items.values_list("pk", flat=True))
    assert {s.item.pk for s in result.suggestions} <= scifi
    for s in result.suggestions:
        assert re.fullmatch(r"Popular in Sci-Fi: rated by \d+ people", s.reason), s.reason
        assert int(s.reason.split()[-2]) >= reasons.min_people()

    client.force_login(newcomer)
    panel = _panel(client.get(reverse("home")).content.decode(), "panel-people-like-you")
    assert 'data-source="content"' in panel and "To start you off" in panel
    assert panel.count('class="card suggestion"') == 8
    assert all(line.startswith("Popular in Sci-Fi") for line in _reasons(panel))

    api = APIClient()
    api.force_authenticate(newcomer)
    body = api.get("/api/v1/me/recommendations/", {"limit": 5}).json()
    assert body["source"] == "content" and len(body["results"]) == 5
    assert body["pending"] is False and "genres you like" in body["note"]
    assert all(r["reason"].startswith("Popular in Sci-Fi") for r in body["results"])


def test_one_high_rating_without_genres_gives_items_like_it(newcomer):
    """1-2 ratings and no genre: content from the items rated 4 or 5, naming them."""
    GenrePick.objects.filter(user=newcomer).delete()
    favourite = Item.objects.filter(genres__name="Drama").order_by("-rating_count").first()
    catalog_services.rating_upsert(user=newcomer, item=favourite, score=5)
    result = reads.recommendations_for_user(user=newcomer, limit=8, explain=True)
    assert result.source == reads.CONTENT and len(result.suggestions) == 8
    for s in result.suggestions:
        assert s.reason == f"Like {favourite.title}, which you rated 5"
        assert [b.pk for b in s.because_items] == [favourite.pk]
        assert s.item.pk != favourite.pk


def test_genres_and_a_rating_blend_with_reasons_from_each(newcomer):
    favourite = Item.objects.filter(genres__name="Drama").order_by("-rating_count").first()
    catalog_services.rating_upsert(user=newcomer, item=favourite, score=5)
    lines = [s.reason for s in reads.recommendations_for_user(user=newcomer, limit=20).suggestions]
    assert any(line.startswith("Popular in Sci-Fi") for line in lines), lines
    assert any(line.startswith(f"Like {favourite.title}") for line in lines), lines


def test_low_ratings_alone_give_no_content_list(published):
    user = UserFactory()
    item = Item.objects.order_by("-rating_count").first()
    catalog_services.rating_upsert(user=user, item=item, score=2)
    result = reads.recommendations_for_user(user=user, limit=5)
    assert result.source == reads.POPULAR


def test_the_list_leaves_out_hidden_items_and_honours_a_genre(newcomer):
    first = reads.recommendations_for_user(user=newcomer, limit=5).suggestions[0].item
    catalog_services.item_hide(user=newcomer, item=Item.objects.get(pk=first.pk))
    again = reads.recommendations_for_user(user=newcomer, limit=5).suggestions
    assert first.pk not in [s.item.pk for s in again]
    action = Genre.objects.get(name="Action")
    only = reads.recommendations_for_user(user=newcomer, limit=5, genre=action.slug).suggestions
    assert only and all(action.slug in {g.slug for g in s.item.card_genres()} for s in only)


def test_reasons_reveal_no_ones_rating(newcomer):
    """A Sci-Fi item rated by one other person: its line has no number and no score; the
    content lines name only the newcomer's own items; no other user is named anywhere."""
    scifi = Genre.objects.get(name="Sci-Fi")
    lonely = ItemFactory(title="Only One Opinion", genres=[scifi])
    other = UserFactory(username="someone-else")
    catalog_services.rating_upsert(user=other, item=lonely, score=5)
    assert reasons.genre_popular_reason("Sci-Fi", 1) == "In Sci-Fi, a genre you like"
    assert reasons.genre_popular_reason("Sci-Fi", 2) == "In Sci-Fi, a genre you like"
    result = reads.recommendations_for_user(user=newcomer, limit=100, explain=True)
    for s in result.suggestions:
        assert "average" not in s.reason and "someone-else" not in s.reason
        assert s.because_items == []  # rated nothing: no item of theirs to name
        if s.item.rating_count < reasons.min_people():
            assert not re.search(r"\d", s.reason), s.reason
    api = APIClient()
    api.force_authenticate(newcomer)
    text = api.get("/api/v1/me/recommendations/", {"limit": 100, "explain": True}).content
    assert b"someone-else" not in text and b'"user' not in text


def test_a_new_user_with_nothing_still_gets_popular_items(published):
    user = get_user_model().objects.create_user("blank", password="a-long-pass-phrase")
    result = reads.recommendations_for_user(user=user, limit=5)
    assert result.source == reads.POPULAR
    assert result.note == reasons.note_few_ratings(reasons.personal_threshold())
