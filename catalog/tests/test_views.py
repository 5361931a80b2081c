import pytest
from django.test import Client
from django.urls import reverse

from catalog import services
from catalog.models import Rating
from catalog.tests.factories import GenreFactory, ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def csrf_client():
    return Client(enforce_csrf_checks=True)


def _csrf(client, url):
    client.get(url)
    return client.cookies["csrftoken"].value


def test_home_shows_top_rated_and_popular_with_a_genre_filter(client):
    scifi = GenreFactory(name="Sci-Fi", slug="sci-fi")
    space = ItemFactory(title="Space Opera", genres=[scifi])
    ItemFactory(title="Quiet Drama")
    services.rating_upsert(user=UserFactory(), item=space, score=5)
    page = client.get(reverse("home"), {"genre": "sci-fi"}).content.decode()
    assert "Top rated" in page and "Most popular" in page
    assert "Space Opera" in page
    assert "Sign up to start rating" in page


def test_item_list_searches_filters_and_paginates(client):
    drama = GenreFactory(name="Drama")
    for n in range(30):
        ItemFactory(title=f"Film {n:02d}", genres=[drama] if n % 2 else [])
    response = client.get(reverse("catalog:item_list"), {"sort": "title"})
    assert response.status_code == 200
    assert len(response.context["page"]) == 24
    second = client.get(reverse("catalog:item_list"), {"sort": "title", "page": 2})
    assert [i.title for i in second.context["page"]] == [f"Film {n}" for n in range(24, 30)]
    filtered = client.get(reverse("catalog:item_list"), {"genre": "drama", "q": "film 1"})
    assert sorted(i.title for i in filtered.context["page"]) == [
        f"Film {n}" for n in range(11, 20, 2)
    ]
    # A malformed page number or sort falls back instead of failing.
    assert client.get(reverse("catalog:item_list"), {"page": "abc", "sort": "x"}).status_code == 200


def test_item_page_shows_average_count_and_my_rating(client):
    item = ItemFactory(title="Rated Thing")
    me = UserFactory()
    services.rating_upsert(user=me, item=item, score=4)
    services.rating_upsert(user=UserFactory(), item=item, score=3)
    client.force_login(me)
    page = client.get(item.get_absolute_url()).content.decode()
    assert "3.50" in page and "<strong>2</strong> ratings" in page
    assert "You rated this <strong>4</strong>" in page
    assert "Remove my rating" in page


def test_hidden_and_missing_items_are_404(client):
    assert client.get(ItemFactory(is_active=False).get_absolute_url()).status_code == 404
    assert client.get(reverse("catalog:item_detail", args=[999999])).status_code == 404


def test_rating_with_the_plain_form_works_without_javascript_and_needs_csrf(csrf_client):
    item, me = ItemFactory(), UserFactory()
    csrf_client.force_login(me)
    url = reverse("catalog:rating_submit", args=[item.pk])
    assert csrf_client.post(url, {"score": "4.5"}).status_code == 403
    token = _csrf(csrf_client, item.get_absolute_url())
    response = csrf_client.post(url, {"score": "4.5", "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response.url == item.get_absolute_url()
    assert Rating.objects.get(user=me, item=item).score == 4.5
    page = csrf_client.get(item.get_absolute_url()).content.decode()
    assert "You rated" in page


def test_a_bad_score_from_the_form_is_a_400_naming_the_problem(client):
    item, me = ItemFactory(), UserFactory()
    client.force_login(me)
    response = client.post(reverse("catalog:rating_submit", args=[item.pk]), {"score": "7"})
    assert response.status_code == 400
    assert "Choose a score from 0.5 to 5" in response.content.decode()
    assert not Rating.objects.exists()


def test_removing_a_rating(client):
    item, me = ItemFactory(), UserFactory()
    services.rating_upsert(user=me, item=item, score=2)
    client.force_login(me)
    client.post(reverse("catalog:rating_remove", args=[item.pk]))
    assert not Rating.objects.exists()


def test_rating_requires_login(client):
    item = ItemFactory()
    response = client.post(reverse("catalog:rating_submit", args=[item.pk]), {"score": "4"})
    assert response.status_code == 302 and reverse("login") in response.url
    assert not Rating.objects.exists()


def test_sign_up_logs_in_and_log_out_needs_post(client):
    response = client.post(
        reverse("signup"),
        {"username": "newbie", "password1": "correct horse 42", "password2": "correct horse 42"},
    )
    assert response.status_code == 302
    assert client.get(reverse("home")).context["user"].username == "newbie"
    assert client.get(reverse("logout")).status_code == 405
    client.post(reverse("logout"))
    assert not client.get(reverse("home")).context["user"].is_authenticated


def test_sign_up_applies_the_password_validators(client):
    response = client.post(
        reverse("signup"), {"username": "weak", "password1": "123", "password2": "123"}
    )
    assert response.status_code == 200
    assert "too short" in response.content.decode()


def test_log_in_with_the_form(client):
    UserFactory(username="alice")
    response = client.post(
        reverse("login"), {"username": "alice", "password": "a-long-pass-phrase"}
    )
    assert response.status_code == 302


def test_staff_can_use_the_admin_lists(admin_client):
    item = ItemFactory(title="Admin Visible")
    services.rating_upsert(user=UserFactory(), item=item, score=4)
    for name in ["catalog_item", "catalog_rating", "catalog_genre"]:
        response = admin_client.get(reverse(f"admin:{name}_changelist"), {"q": "a"})
        assert response.status_code == 200
    page = admin_client.get(reverse("admin:catalog_item_changelist")).content.decode()
    assert "Admin Visible" in page and "4.00" in page
    assert admin_client.get(reverse("admin:catalog_item_change", args=[item.pk])).status_code == 200
