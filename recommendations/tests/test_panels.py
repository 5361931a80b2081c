"""The recommendation panels on the pages, read from a model published in the test Redis."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from catalog import services as catalog_services
from catalog.models import Item, Rating
from catalog.tests.factories import ItemFactory, UserFactory
from recommendations import pipeline

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(rec_redis, demo_catalogue):
    """The demo catalogue with a model published, and the demo user (a Sci-Fi/Action taste)."""
    run = pipeline.recompute_sync()
    assert run.version, run.error
    return get_user_model().objects.get(username="demo")


def _panel(page: str, panel_id: str) -> str:
    start = page.index(f'id="{panel_id}"')
    return page[start : page.index("</section>", start)]


def test_home_fills_people_like_you_with_a_reason_per_item(client, published):
    client.force_login(published)
    page = client.get(reverse("home")).content.decode()
    panel = _panel(page, "panel-people-like-you")
    assert 'data-source="personal"' in panel
    assert "From people with your taste" in panel
    cards = panel.count('class="card suggestion"')
    assert 1 <= cards <= 8
    assert panel.count('class="reason"') == cards
    # Each reason is one of reasons.personal_reason's sentences; an average is quoted only
    # over enough people and only when it is a liking (which items get one depends on
    # the database's tie order, so the test does not insist on any).
    reasons = re.findall(r'class="reason"[^>]*>(.*?)</', panel, re.S)
    assert len(reasons) == cards
    for text in (" ".join(r.replace("↳", " ").split()) for r in reasons):
        average = re.fullmatch(r"(\d+) people with your taste rated it (\d\.\d) on average", text)
        if average:
            assert int(average[1]) >= 3 and float(average[2]) >= 4.0, text
        else:
            assert re.fullmatch(
                r"Because you rated .+|Rated by \d+ people with your taste"
                r"|From people whose ratings look like yours|Close to what you rate highly"
                r"|Loved by people who rated .+",
                text,
            ), text
    # Only items the user has not rated, each with stars to rate it and "Not interested".
    mine = set(Rating.objects.filter(user=published).values_list("item_id", flat=True))
    for item_id in mine:
        assert f'data-card-item="{item_id}"' not in panel
    assert panel.count("data-hide-form") == cards


def test_home_shows_because_you_rated_rows_for_recent_high_ratings(client, published):
    client.force_login(published)
    page = client.get(reverse("home")).content.decode()
    panel = _panel(page, "panel-because-you-rated")
    assert "Because you rated" in panel and "people rated both" in panel
    latest = Rating.objects.filter(user=published, score__gte=4).order_by("-updated", "-id").first()
    assert f'Because you rated <a href="{latest.item.get_absolute_url()}">' in panel


def test_item_page_shows_people_who_liked_this_also_liked(client, published):
    client.force_login(published)
    item = Item.objects.order_by("-rating_count").first()
    page = client.get(item.get_absolute_url()).content.decode()
    panel = _panel(page, "panel-also-liked")
    assert "People who rated this also rated" in panel and 'data-source="personal"' in panel
    assert f'data-card-item="{item.pk}"' not in panel


def test_not_interested_takes_an_item_out_of_every_panel(client, published):
    client.force_login(published)
    url = reverse("recommendations:panel_people_like_you")
    first = client.get(url).context["recs"].suggestions[0].item
    response = client.post(
        reverse("catalog:item_hide", args=[first.pk]), HTTP_ACCEPT="application/json"
    )
    assert response.json()["hidden"] is True
    assert f'data-card-item="{first.pk}"' not in client.get(url).content.decode()
    assert f'data-card-item="{first.pk}"' not in client.get(reverse("home")).content.decode()


def test_a_new_rating_changes_the_panels_at_once(client, published):
    """The item-based rows read the live ratings: no recompute needed for a new rating."""
    client.force_login(published)
    url = reverse("recommendations:panel_because_you_rated")
    before = client.get(url).context["rows"]
    unrated = (
        Item.objects.exclude(ratings__user=published)
        .exclude(pk__in=[rated.pk for rated, _ in before])
        .order_by("-rating_count")
        .first()
    )
    catalog_services.rating_upsert(user=published, item=unrated, score=5)
    after = client.get(url).context["rows"]
    assert after[0][0].pk == unrated.pk  # a card of the item, not an ORM instance
    # And the panel fragment is what the page includes, ready to swap in.
    fragment = client.get(url).content.decode()
    assert fragment.startswith('<section class="panel because" id="panel-because-you-rated"')


def test_panel_fragments_keep_forms_pointing_back_to_the_page(client, published):
    client.force_login(published)
    fragment = client.get(
        reverse("recommendations:panel_people_like_you"), {"next": "/?genre=sci-fi"}
    ).content.decode()
    assert 'name="next" value="/?genre=sci-fi"' in fragment
    unsafe = client.get(
        reverse("recommendations:panel_people_like_you"), {"next": "https://evil.example/"}
    ).content.decode()
    assert "evil.example" not in unsafe


def test_without_a_model_the_panel_says_what_to_do(client, rec_redis, settings):
    me = UserFactory()
    client.force_login(me)
    catalog_services.rating_upsert(user=me, item=ItemFactory(), score=4)
    # below MIN_RATINGS_FOR_PERSONAL (3): no personal list is waiting for a model
    panel = _panel(client.get(reverse("home")).content.decode(), "panel-people-like-you")
    assert "data-pending" not in panel and "being prepared" not in panel
    # the ranking model can serve from one rating (MODEL_MIN_RATINGS): it is being prepared
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "MODEL_MIN_RATINGS": 1}
    panel = _panel(client.get(reverse("home")).content.decode(), "panel-people-like-you")
    assert "being prepared" in panel and "data-pending" in panel
    # by default, from MIN_RATINGS_FOR_PERSONAL on, with or without the model
    for model in (True, False):
        settings.RECOMMENDATIONS = {
            **settings.RECOMMENDATIONS,
            "MODEL": model,
            "MODEL_MIN_RATINGS": None,
        }
        while me.ratings.count() < 3:
            catalog_services.rating_upsert(user=me, item=ItemFactory(), score=4)
        panel = _panel(client.get(reverse("home")).content.decode(), "panel-people-like-you")
        assert "being prepared" in panel and "rate more items" in panel and "data-pending" in panel


def test_when_redis_is_down_pages_still_work(client, settings, rec_redis):
    from recommendations import store

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    store._client_for.cache_clear()
    me = UserFactory()
    item = ItemFactory()
    for _ in range(5):
        catalog_services.rating_upsert(user=me, item=ItemFactory(), score=4)
    client.force_login(me)
    home = client.get(reverse("home"))
    assert home.status_code == 200
    assert "briefly unavailable" in _panel(home.content.decode(), "panel-people-like-you")
    assert client.get(item.get_absolute_url()).status_code == 200
    store._client_for.cache_clear()


def test_signed_out_pages_have_no_personal_panels(client, published):
    page = client.get(reverse("home")).content.decode()
    assert "panel-people-like-you" not in page and "panel-because-you-rated" not in page
    assert client.get(reverse("recommendations:panel_people_like_you")).content.strip() == b""
    item = Item.objects.order_by("-rating_count").first()
    page = client.get(item.get_absolute_url()).content.decode()
    assert "People who rated this also rated" in page and "data-hide-form" not in page


def test_panel_queries_are_bounded(
    client, published, django_assert_num_queries, django_assert_max_num_queries
):
    """With a model published, the home page's queries do not grow with the panels' items.

    Home 16 (session and user, hidden items, 5 for top rated and most popular, "you
    rated" marks, the rating count, 2 for "people like you" (the stored list's taste
    stamp, the cards), 3 for "because you rated" (its recent ratings, which of the
    candidates the user rated or hid, the cards), the genres);
    item page 8 (9 when places go to items nobody has rated yet; "also rated": the
    user's rated and hidden items in one statement, the cards in one; its content
    places are one stored row, read from Redis).
    """
    client.force_login(published)
    # The first page in a process may read the titles and genres of cards it has not kept
    # yet (catalog.cards.static_parts): one statement more.
    with django_assert_max_num_queries(17):
        client.get(reverse("home"))
    with django_assert_num_queries(16):
        page = client.get(reverse("home"))
    assert page.content.decode().count('class="card suggestion"') >= 10
    item = Item.objects.order_by("-rating_count").first()
    with django_assert_num_queries(8):
        client.get(item.get_absolute_url())


def test_pages_and_panels_never_compute_similarities(client, published, monkeypatch):
    """Requests read neighbour lists from the store; the heavy work is the workers' alone."""
    from recommendations import build
    from recommendations.engine import similarity

    def forbidden(*args, **kwargs):
        raise AssertionError("a request computed similarities")

    monkeypatch.setattr(similarity, "compute_neighbours", forbidden)
    monkeypatch.setattr(build, "compute_rows", forbidden)
    monkeypatch.setattr(build, "snapshot_ratings", forbidden)
    client.force_login(published)
    item = Item.objects.order_by("-rating_count").first()
    page = client.get(reverse("home")).content.decode()
    assert 'data-source="personal"' in page
    assert (
        "People who rated this also rated" in client.get(item.get_absolute_url()).content.decode()
    )
    for name in ["panel_people_like_you", "panel_because_you_rated"]:
        assert client.get(reverse(f"recommendations:{name}")).status_code == 200
    assert (
        client.get(reverse("recommendations:panel_also_liked", args=[item.pk])).status_code == 200
    )
    # A background rating only saves; the model update runs after commit, in a worker.
    response = client.post(
        reverse("catalog:rating_submit", args=[item.pk]),
        {"score": "4.5"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200
