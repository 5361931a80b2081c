"""Reasons that are honest and private: no aggregate over fewer than REASON_MIN_PEOPLE
people, no user ids beside per-item aggregates, "liked" only for 4 or more, no
suggestion whose evidence is negative, no item repeated across "Because you rated" rows."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework.test import APIClient

from catalog import services as catalog_services
from catalog.models import Genre, Item, Rating
from catalog.tests.factories import ItemFactory, UserFactory
from recommendations import pipeline, reads, reasons, store
from recommendations.conf import get as option

pytestmark = pytest.mark.django_db

AGGREGATE = re.compile(r"(\d+) (?:person|people)")


@pytest.fixture
def scene(rec_redis, demo_catalogue):
    """The demo catalogue, plus items the demo user's neighbours alone rated: one by one
    neighbour (4.5), one by two (4 and 5), one by five who all disliked it (1.5)."""
    demo = get_user_model().objects.get(username="demo")
    pipeline.recompute_sync()
    neighbours = [
        get_user_model().objects.get(pk=n.user_id) for n in reads.similar_users(user=demo, limit=5)
    ]
    assert len(neighbours) == 5
    items = {name: ItemFactory(title=name) for name in ("one", "two", "disliked")}
    catalog_services.rating_upsert(user=neighbours[0], item=items["one"], score=4.5)
    catalog_services.rating_upsert(user=neighbours[1], item=items["two"], score=4)
    catalog_services.rating_upsert(user=neighbours[2], item=items["two"], score=5)
    for v in neighbours:
        catalog_services.rating_upsert(user=v, item=items["disliked"], score=1.5)
    pipeline.recompute_sync()
    assert {n.user_id for n in reads.similar_users(user=demo, limit=50)} >= {
        v.pk for v in neighbours
    }
    return demo, neighbours, items


def _aggregates(text: str) -> list[int]:
    return [int(n) for n in AGGREGATE.findall(text)]


def test_no_reason_quotes_fewer_than_the_minimum_and_no_user_id_is_returned(scene):
    """One neighbour rated "one" 4.5: neither the reason nor anything else in
    me/recommendations?explain=true lets the user work that out."""
    demo, neighbours, items = scene
    client = APIClient()
    client.force_authenticate(demo)
    mine = set(Rating.objects.filter(user=demo).values_list("item_id", flat=True))
    body = client.get("/api/v1/me/recommendations/", {"limit": 100, "explain": "true"}).json()
    for result in body["results"]:
        assert all(n >= option("REASON_MIN_PEOPLE") for n in _aggregates(result["reason"]))
        assert set(result["because"]) == {"items"}  # no ids of people at all
        assert {i["id"] for i in result["because"]["items"]} <= mine
    # "one" and "two" rank near the end of the demo user's ~140 candidates (one or two
    # people's evidence), around the 100th place, so the whole list cannot be relied on to
    # hold them: a genre only they have narrows the same request to them.
    quiet = Genre.objects.create(name="Quiet", slug="quiet")
    for item in items.values():
        item.genres.add(quiet)
    body = client.get(
        "/api/v1/me/recommendations/", {"genre": "quiet", "limit": 10, "explain": "true"}
    ).json()
    assert body["source"] == reads.PERSONAL
    by_id = {r["item"]["id"]: r for r in body["results"]}
    assert items["one"].pk in by_id and items["two"].pk in by_id  # still suggested...
    for name in ("one", "two"):
        reason = by_id[items[name].pk]["reason"]
        assert not AGGREGATE.search(reason), reason  # ...but with no 1- or 2-person figure
        assert "4.5" not in reason
        assert {i["id"] for i in by_id[items[name].pk]["because"]["items"]} <= mine


def test_the_panels_and_stored_lists_follow_the_same_rule(scene, client):
    demo, _, items = scene
    lists = [
        reads.people_like_you(user=demo, limit=500),  # every candidate
        reads.recommendations_for_user(user=demo, limit=option("READY_LIST_LENGTH")),
        reads._from_ready_list(store.live_model(), demo.pk, 30),  # the stored list
    ]
    assert lists[2] is not None
    for result in lists:
        assert result.source == reads.PERSONAL
        for s in result.suggestions:
            assert all(n >= option("REASON_MIN_PEOPLE") for n in _aggregates(s.reason)), s
    client.force_login(demo)
    page = client.get(reverse("home")).content.decode()
    assert all(n >= option("REASON_MIN_PEOPLE") for n in _aggregates(page))
    liked = {s.item.pk: s.reason for s in lists[0].suggestions}
    assert items["one"].pk in liked and not AGGREGATE.search(liked[items["one"].pk])


def test_the_minimum_is_a_setting(scene, settings):
    demo, _, items = scene
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "REASON_MIN_PEOPLE": 2}
    result = reads.people_like_you(user=demo, limit=100)
    reason = {s.item.pk: s.reason for s in result.suggestions}[items["two"].pk]
    assert reason == "2 people with your taste rated it 4.5 on average"


def test_an_item_the_neighbours_disliked_is_not_suggested(scene):
    """Five neighbours rated it 1.5: the user part would count that as evidence for it;
    it is left out of every list, live and stored."""
    demo, _, items = scene
    disliked = items["disliked"].pk
    assert disliked not in {
        s.item.pk for s in reads.people_like_you(user=demo, limit=100).suggestions
    }
    for limit in (10, 100):  # the stored list, and a live computation
        result = reads.recommendations_for_user(user=demo, limit=limit)
        assert result.source == reads.PERSONAL
        assert disliked not in {s.item.pk for s in result.suggestions}
    stored = store.live_model().ready_list(demo.pk)[1]
    assert disliked not in stored["item"].tolist()
    # Every suggestion that quotes an average quotes a liked one (4 or more).
    for s in reads.people_like_you(user=demo, limit=100).suggestions:
        for mean in re.findall(r"rated it (\d\.\d) on average", s.reason):
            assert float(mean) >= reasons.LIKED


def test_because_you_rated_rows_never_repeat_an_item(client, rec_redis, demo_catalogue):
    demo = get_user_model().objects.get(username="demo")
    pipeline.recompute_sync()
    rows = reads.because_you_rated(user=demo, rows=3, limit=20)
    assert len(rows) == 3
    shown = [s.item.pk for _, similar in rows for s in similar]
    assert len(shown) == len(set(shown))


def test_also_rated_says_rated_and_counts_only_enough_people(client, rec_redis, demo_catalogue):
    pipeline.recompute_sync()
    item = Item.objects.order_by("-rating_count").first()
    page = client.get(item.get_absolute_url()).content.decode()
    assert "People who rated this also rated" in page and "who liked" not in page
    similar = reads.similar_items(item=item, limit=50)
    for s in similar:
        if s.source != reads.PERSONAL:  # content matches say what they share instead
            continue
        line = reasons.similar_item_reason(s)
        assert (line == "") == (s.support < option("REASON_MIN_PEOPLE")), (line, s.support)
    body = APIClient().get(f"/api/v1/items/{item.pk}/similar/", {"limit": 50}).json()
    assert [r["support"] for r in body] == [
        s.support if s.support >= option("REASON_MIN_PEOPLE") else None for s in similar
    ]


@pytest.mark.parametrize(
    ("people", "total", "because", "expected"),
    [
        (4, 17.0, "Alien", "4 people with your taste rated it 4.2 on average"),
        (4, 11.6, "Alien", "Because you rated Alien"),  # 2.9 on average: not a selling point
        (4, 11.6, None, "Rated by 4 people with your taste"),
        (2, 9.0, None, "From people whose ratings look like yours"),
        (1, 3.5, "Alien", "Because you rated Alien"),
        (0, 0.0, None, "Close to what you rate highly"),
    ],
)
def test_personal_reason_sentences(people, total, because, expected):
    assert reasons.personal_reason(people, total, because) == expected


def test_popular_reason_hides_the_average_of_one_or_two_people():
    assert reasons.popular_reason(1, 3.5) == "Only a few ratings so far"
    assert reasons.popular_reason(0, 0.0) == "New in the catalogue"
    assert reasons.popular_reason(12, 3.91) == "Rated 3.9 on average by 12 people"


def test_evidence_floor_is_the_users_mean_or_neutral_whichever_is_lower():
    assert reasons.evidence_floor([5, 4.5, 4]) == reasons.NEUTRAL
    assert reasons.evidence_floor([2, 2.5, 1]) == pytest.approx(5.5 / 3)
    assert reasons.evidence_floor([]) == reasons.NEUTRAL


def test_a_user_the_model_has_not_seen_is_caught_up(rec_redis, demo_catalogue, settings):
    """Rated while the model was being built (no update could run): the panel says the
    suggestions are on their way and queues the update that adds the user. (The ranking
    model scores such a user from their live ratings at once.)"""
    pipeline.recompute_sync()
    late = UserFactory()
    for item in Item.objects.order_by("-rating_count")[: reasons.personal_threshold()]:
        Rating.objects.create(user=late, item=item, score=5)
    assert reads.people_like_you(user=late, fallback=False).source == reads.PERSONAL
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "MODEL": False}
    result = reads.people_like_you(user=late, fallback=False)
    assert result.source == reads.POPULAR and result.pending
    assert "being prepared" in result.note
    assert store.client().exists(store.key("queued", late.pk))
    pipeline.model_update_for_rating(user_id=late.pk, item_ids=store.pending_take(late.pk))
    assert reads.people_like_you(user=late).source == reads.PERSONAL


def test_similar_users_lists_only_people_sharing_enough_items(rec_redis, demo_catalogue):
    """Rate one item, and similar-users would list who else rated it: a neighbour is
    listed only when the two share at least REASON_MIN_PEOPLE rated items."""
    pipeline.recompute_sync()
    item = Item.objects.order_by("-rating_count").first()
    prober = UserFactory()
    Rating.objects.create(user=prober, item=item, score=5)
    pipeline.model_update_for_rating(user_id=prober.pk, item_ids=[item.pk])
    row = store.live_model().user_neighbours([prober.pk])[prober.pk]
    assert row is not None and len(row)  # the model knows who rated that item too...
    assert reads.similar_users(user=prober, limit=50) == []  # ...and does not say
    demo = get_user_model().objects.get(username="demo")
    shown = reads.similar_users(user=demo, limit=50)
    assert shown
    support = dict(store.live_model().user_neighbours([demo.pk])[demo.pk][["id", "support"]])
    assert all(support[u.user_id] >= option("REASON_MIN_PEOPLE") for u in shown)


def test_sentences_are_translated_once_per_language(monkeypatch):
    """A list of ten suggestions asks for the same sentences again and again: each is
    looked up in the catalogues once per language, then remembered."""
    from django.utils import translation

    calls = []
    real = translation.ngettext

    def counting(singular, plural, n):
        calls.append((translation.get_language(), n))
        return real(singular, plural, n)

    reasons._translated.cache_clear()
    monkeypatch.setattr(translation, "ngettext", counting)
    first = reasons.personal_reason(5, 22.0, None)
    assert (
        reasons.personal_reason(5, 22.0, None)
        == first
        == ("5 people with your taste rated it 4.4 on average")
    )
    assert calls == [("en-us", 5)]
    with translation.override("fr"):
        reasons.personal_reason(5, 22.0, None)
    assert calls == [("en-us", 5), ("fr", 5)]
    reasons._translated.cache_clear()
