"""Genres you like: picked at sign-up (page and API), changed on the profile, the home
page's first-minute strip and ``me/genres/``; unknown genres are refused by name."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import GenrePick
from catalog.tests.factories import GenreFactory, ItemFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-pass-phrase"


@pytest.fixture
def genres():
    return {
        name: GenreFactory(name=name, slug=name.lower().replace("-", ""))
        for name in ("Sci-Fi", "Drama", "Comedy")
    }


def _picked(user) -> set[str]:
    return set(GenrePick.objects.filter(user=user).values_list("genre__slug", flat=True))


def test_sign_up_form_offers_genres_as_a_labelled_checkbox_group(client, genres):
    page = client.get(reverse("signup")).content.decode()
    group = page[page.index("<fieldset") : page.index("</fieldset>")]
    assert "<legend>Genres you like</legend>" in group
    assert group.count('type="checkbox"') == 3 and 'name="genres"' in group
    assert 'aria-describedby="id_genres_helptext"' in group


def test_sign_up_with_genres_stores_them(client, genres):
    response = client.post(
        reverse("signup"),
        {"username": "ana", "password1": PASSWORD, "password2": PASSWORD,
         "genres": ["scifi", "drama"]},
    )  # fmt: skip
    assert response.status_code == 302
    assert _picked(get_user_model().objects.get(username="ana")) == {"scifi", "drama"}


def test_sign_up_without_genres_is_fine(client, genres):
    body = {"username": "bo", "password1": PASSWORD, "password2": PASSWORD}
    assert client.post(reverse("signup"), body).status_code == 302
    assert _picked(get_user_model().objects.get(username="bo")) == set()


def test_sign_up_with_an_unknown_genre_names_it_and_makes_no_account(client, genres):
    body = {"username": "cy", "password1": PASSWORD, "password2": PASSWORD, "genres": ["nope"]}
    page = client.post(reverse("signup"), body).content.decode()
    assert "There is no genre “nope”." in page and 'href="#id_genres_group"' in page
    assert not get_user_model().objects.filter(username="cy").exists()


def test_profile_shows_and_changes_my_genres(client, genres):
    user = UserFactory()
    GenrePick.objects.create(user=user, genre=genres["Drama"])
    client.force_login(user)
    page = client.get(reverse("profile")).content.decode()
    assert 'value="drama" id="id_genres_1" checked' in page or (
        'value="drama"' in page and "checked" in page
    )
    response = client.post(reverse("profile_genres"), {"genres": ["comedy", "scifi"]})
    assert response.status_code == 302 and response["Location"] == reverse("profile")
    assert _picked(user) == {"comedy", "scifi"}
    assert client.post(reverse("profile_genres"), {}).status_code == 302
    assert _picked(user) == set()


def test_profile_genres_refuse_unknown_ones_with_400(client, genres):
    user = UserFactory()
    client.force_login(user)
    response = client.post(reverse("profile_genres"), {"genres": ["scifi", "made-up"]})
    assert response.status_code == 400
    assert "There is no genre “made-up”." in response.content.decode()
    assert _picked(user) == set()


def test_the_home_strip_saves_genres_and_comes_back(client, genres):
    ItemFactory(genres=[genres["Drama"]])  # the strip shows while there are items to rate
    user = UserFactory()
    client.force_login(user)
    home = client.get(reverse("home")).content.decode()
    assert "data-genre-picks" in home and 'id="id_onboarding_genres_0"' in home
    response = client.post(reverse("profile_genres"), {"genres": ["drama"], "next": "/"})
    assert response["Location"] == "/"
    outside = client.post(
        reverse("profile_genres"), {"genres": ["drama"], "next": "https://evil.example/"}
    )
    assert outside["Location"] == reverse("profile")


def test_my_data_includes_my_genres(client, genres):
    user = UserFactory()
    GenrePick.objects.create(user=user, genre=genres["Sci-Fi"])
    client.force_login(user)
    body = json.loads(client.get(reverse("data_export_json")).content)
    assert body["genres"] == [{"slug": "scifi", "name": "Sci-Fi"}]
    assert "genre you like,,Sci-Fi" in client.get(reverse("data_export_csv")).content.decode()


# -- the API ----------------------------------------------------------------------------
def _messages(errors) -> list[str]:
    """Every message in an error shape's field entry (lists, dicts by index, details)."""
    if isinstance(errors, dict):
        if "message" in errors:
            return [errors["message"]]
        return [m for value in errors.values() for m in _messages(value)]
    if isinstance(errors, list):
        return [m for value in errors for m in _messages(value)]
    return [str(errors)]


def test_api_register_accepts_genres(genres):
    response = APIClient().post(
        "/api/v1/auth/register/",
        {"username": "dee", "password": PASSWORD, "genres": ["scifi", "comedy"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert sorted(response.json()["genres"]) == ["comedy", "scifi"]
    assert _picked(get_user_model().objects.get(username="dee")) == {"scifi", "comedy"}


@pytest.mark.parametrize(
    "value, message",
    [
        (["scifi", "westerns"], "There is no genre “westerns”."),
        ("scifi", 'Expected a list of items but got type "str".'),
        ([""], "This field may not be blank."),
    ],
)
def test_api_register_refuses_bad_genres_with_400_and_field_messages(genres, value, message):
    response = APIClient().post(
        "/api/v1/auth/register/",
        {"username": "eve", "password": PASSWORD, "genres": value},
        format="json",
    )
    assert response.status_code == 400, response.json()
    fields = response.json()["error"]["fields"]
    assert message in _messages({k: v for k, v in fields.items() if k.startswith("genres")})
    assert not get_user_model().objects.filter(username="eve").exists()


def test_api_me_genres_reads_and_replaces_my_genres(genres):
    user = UserFactory()
    api = APIClient()
    assert api.get("/api/v1/me/genres/").status_code in (401, 403)
    api.force_authenticate(user)
    assert api.get("/api/v1/me/genres/").json() == {"genres": []}
    response = api.put("/api/v1/me/genres/", {"genres": ["drama", "scifi"]}, format="json")
    assert response.status_code == 200 and response.json() == {"genres": ["drama", "scifi"]}
    bad = api.put("/api/v1/me/genres/", {"genres": ["drama", "nope", "nada"]}, format="json")
    assert bad.status_code == 400 and bad["Content-Type"] == "application/json"
    assert _messages(bad.json()["error"]["fields"]["genres"]) == [
        "There is no genre “nope”.",
        "There is no genre “nada”.",
    ]
    assert _picked(user) == {"drama", "scifi"}
