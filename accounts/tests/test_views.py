"""Account pages: profile numbers, download my data, delete my account, password change
and reset, the signed-out page."""

import csv
import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from catalog import services
from catalog.models import HiddenItem, Item, Rating
from catalog.signals import rating_changed
from catalog.tests.factories import GenreFactory, ItemFactory, UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-pass-phrase"


@pytest.fixture
def rated():
    """alice rated four items (two sci-fi 5 and 4, two drama 2 and 3) and hid one;
    bob rated one of them too."""
    scifi, drama = GenreFactory(name="Sci-Fi"), GenreFactory(name="Drama")
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    items = [
        ItemFactory(title="Dune", genres=[scifi]),
        ItemFactory(title="Alien", genres=[scifi]),
        ItemFactory(title="Heat", genres=[drama]),
        ItemFactory(title="Fargo", genres=[drama]),
    ]
    for item, score in zip(items, [5, 4, 2, 3], strict=True):
        services.rating_upsert(user=alice, item=item, score=score)
    services.rating_upsert(user=bob, item=items[0], score=1)
    hidden = ItemFactory(title="Cats")
    services.item_hide(user=alice, item=hidden)
    return {"alice": alice, "bob": bob, "items": items, "hidden": hidden}


def test_account_pages_need_a_sign_in(client):
    for name in ["profile", "data_export_csv", "data_export_json", "account_delete"]:
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_profile_shows_my_numbers_and_top_genres_only(client, rated):
    client.force_login(rated["alice"])
    page = client.get(reverse("profile")).content.decode()
    assert 'data-profile="ratings">4<' in page
    assert 'data-profile="average">3.50<' in page
    assert "Sci-Fi: 4.5 on average over 2 ratings" in page
    assert page.index("Sci-Fi") < page.index("Drama: 2.5")
    assert "We look for people whose ratings agree with yours" in page
    assert "bob" not in page


def test_profile_of_a_newcomer_says_how_many_ratings_make_it_personal(client):
    client.force_login(UserFactory())
    page = client.get(reverse("profile")).content.decode()
    assert "You have rated 0 items; from 3 on" in page


def test_download_my_data_as_csv_and_json_attachments(client, rated):
    client.force_login(rated["alice"])
    response = client.get(reverse("data_export_csv"))
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="recsite-alice-')
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {(r["kind"], r["title"], r["score"]) for r in rows} == {
        ("rating", "Dune", "5.0"),
        ("rating", "Alien", "4.0"),
        ("rating", "Heat", "2.0"),
        ("rating", "Fargo", "3.0"),
        ("not interested", "Cats", ""),
    }
    response = client.get(reverse("data_export_json"))
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].endswith('.json"')
    body = json.loads(response.content)
    assert body["username"] == "alice"
    assert sorted(r["score"] for r in body["ratings"]) == [2, 3, 4, 5]
    assert [h["title"] for h in body["not_interested"]] == ["Cats"]
    # bob's rating of Dune is nowhere in alice's data.
    assert 1.0 not in [r["score"] for r in body["ratings"]]


def test_delete_needs_the_password_then_removes_the_account_and_its_ratings(
    client, rated, django_capture_on_commit_callbacks
):
    alice, dune = rated["alice"], rated["items"][0]
    client.force_login(alice)
    page = client.get(reverse("account_delete")).content.decode()
    assert "with its 4 ratings" in page and "forget them with the next update" in page
    wrong = client.post(reverse("account_delete"), {"password": "not it"})
    assert wrong.status_code == 400
    assert "That is not your password." in wrong.content.decode()
    assert get_user_model().objects.filter(pk=alice.pk).exists()

    announced = []

    def listener(sender, **kwargs):
        announced.append(kwargs)

    rating_changed.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("account_delete"), {"password": PASSWORD})
    finally:
        rating_changed.disconnect(listener)
    assert response.status_code == 302 and response["Location"] == reverse("signed_out")
    assert not get_user_model().objects.filter(pk=alice.pk).exists()
    assert not Rating.objects.filter(user_id=alice.pk).exists()
    assert not HiddenItem.objects.filter(user_id=alice.pk).exists()
    # The items' counts no longer hold her ratings; bob's stays.
    dune = Item.objects.get(pk=dune.pk)
    assert (dune.rating_count, dune.rating_sum) == (1, 1.0)
    assert Item.objects.get(pk=rated["items"][1].pk).rating_count == 0
    # The pipeline hears of every rating that went.
    assert sorted(a["item_id"] for a in announced) == sorted(i.pk for i in rated["items"])
    assert {(a["user_id"], a["score"]) for a in announced} == {(alice.pk, None)}
    page = client.get(response["Location"]).content.decode()
    assert "The account alice and its 4 ratings were deleted." in page
    assert client.get(reverse("profile")).status_code == 302


def test_log_out_is_a_post_and_lands_on_a_signed_out_page(client, rated):
    client.force_login(rated["alice"])
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response["Location"] == reverse("signed_out")
    page = client.get(response["Location"]).content.decode()
    assert "You are signed out" in page and 'href="/accounts/login/"' in page
    assert "Sign in again" in page


def test_the_header_links_to_profile_and_sign_out(client, rated):
    client.force_login(rated["alice"])
    page = client.get("/").content.decode()
    assert 'href="/accounts/profile/"' in page
    assert 'action="/accounts/logout/"' in page and "Sign out" in page


def test_password_change(client, rated):
    client.force_login(rated["alice"])
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "another long phrase 7",
            "new_password2": "another long phrase 7",
        },
    )
    assert response["Location"] == reverse("password_change_done")
    assert "Password changed" in client.get(response["Location"]).content.decode()
    client.logout()
    assert client.login(username="alice", password="another long phrase 7")


def test_password_reset_by_email_link(client, rated, settings):
    alice = rated["alice"]
    alice.email = "alice@example.com"
    alice.save()
    response = client.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "Set a new Recsite password"
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", message.body).group(1)
    form = client.get(link, follow=True)
    assert "Set a new password" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "brand new phrase 9", "new_password2": "brand new phrase 9"},
    )
    assert done["Location"] == reverse("password_reset_complete")
    assert client.login(username="alice", password="brand new phrase 9")
    # The link works once.
    assert "This link no longer works" in client.get(link, follow=True).content.decode()


def test_password_reset_for_an_unknown_address_says_the_same_and_sends_nothing(client, rated):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response["Location"] == reverse("password_reset_done")
    assert mail.outbox == []


def test_sign_up_takes_an_optional_email_for_resets(client):
    client.post(
        reverse("signup"),
        {"username": "carol", "email": "carol@example.com", "password1": "correct horse 42",
         "password2": "correct horse 42"},
    )  # fmt: skip
    assert get_user_model().objects.get(username="carol").email == "carol@example.com"
