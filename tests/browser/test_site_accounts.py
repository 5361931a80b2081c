"""Accounts in the browser: password reset by email, password change, profile numbers,
download my data, delete my account, the signed-out page."""

import csv
import io
import json
import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from playwright.sync_api import expect

from catalog import services
from catalog.models import Rating
from catalog.tests.factories import GenreFactory, ItemFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "a-long-pass-phrase"


def _log_in(page, live_server, username, password=PASSWORD):
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.locator("main").get_by_role("button", name="Log in").click()
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()


def _sign_out(page):
    page.locator("header").get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()


@pytest.fixture
def alice():
    """alice rated three sci-fi items (5, 4.5, 4) and one drama (2), and hid one."""
    scifi, drama = GenreFactory(name="Sci-Fi"), GenreFactory(name="Drama")
    user = UserFactory(username="alice", email="alice@example.com")
    for title, score, genre in [
        ("Dune", 5, scifi), ("Alien", 4.5, scifi), ("Solaris", 4, scifi), ("Heat", 2, drama),
    ]:  # fmt: skip
        item = ItemFactory(title=title, genres=[genre])
        services.rating_upsert(user=user, item=item, score=score)
    services.item_hide(user=user, item=ItemFactory(title="Cats"))
    return user


def test_password_reset_by_the_emailed_link(page, live_server, alice):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill("alice@example.com")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["alice@example.com"]
    link = re.search(r"https?://\S+/accounts/reset/\S+/", mail.outbox[0].body).group(0)
    assert link.startswith(live_server.url)
    page.goto(link)
    expect(page.get_by_role("heading", name="Set a new password")).to_be_visible()
    page.locator("#id_new_password1").fill("fresh garden phrase 8")
    page.locator("#id_new_password2").fill("fresh garden phrase 8")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("heading", name="Your password is set")).to_be_visible()
    page.get_by_role("main").get_by_role("link", name="Sign in").click()
    _log_in(page, live_server, "alice", "fresh garden phrase 8")
    # The link is spent.
    page.goto(link)
    expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()


def test_password_change_from_the_profile(page, live_server, alice):
    _log_in(page, live_server, "alice")
    page.locator("header").get_by_role("link", name="Profile").click()
    page.get_by_role("link", name="Change your password").click()
    page.locator("#id_old_password").fill(PASSWORD)
    page.locator("#id_new_password1").fill("second long phrase 5")
    page.locator("#id_new_password2").fill("second long phrase 5")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("heading", name="Password changed")).to_be_visible()
    _sign_out(page)
    _log_in(page, live_server, "alice", "second long phrase 5")


def test_profile_shows_my_numbers(page, live_server, alice):
    _log_in(page, live_server, "alice")
    page.locator("header").get_by_role("link", name="Profile").click()
    expect(page.locator('[data-profile="ratings"]')).to_have_text("4")
    expect(page.locator('[data-profile="average"]')).to_have_text("3.88")
    expect(page.locator('[data-profile="hidden"]')).to_have_text("1")
    expect(page.locator('[data-profile="genres"] li').first).to_have_text(
        "Sci-Fi: 4.5 on average over 3 ratings"
    )
    expect(page.get_by_role("heading", name="How your suggestions are made")).to_be_visible()
    expect(page.get_by_text("We look for people whose ratings agree with yours")).to_be_visible()


def test_download_my_data_as_csv_and_json(page, live_server, alice):
    _log_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/accounts/profile/")
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    assert download.value.suggested_filename.startswith("recsite-alice-")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text("utf-8"))))
    assert sorted((r["kind"], r["title"], r["score"]) for r in rows) == [
        ("not interested", "Cats", ""),
        ("rating", "Alien", "4.5"),
        ("rating", "Dune", "5.0"),
        ("rating", "Heat", "2.0"),
        ("rating", "Solaris", "4.0"),
    ]
    with page.expect_download() as download:
        page.get_by_role("link", name="JSON").click()
    assert download.value.suggested_filename.endswith(".json")
    body = json.loads(Path(download.value.path()).read_text("utf-8"))
    assert body["username"] == "alice"
    assert sorted(r["title"] for r in body["ratings"]) == ["Alien", "Dune", "Heat", "Solaris"]
    assert [h["title"] for h in body["not_interested"]] == ["Cats"]


def test_signed_out_page_links_back_to_sign_in(page, live_server, alice):
    _log_in(page, live_server, "alice")
    _sign_out(page)
    expect(page.locator("header")).to_contain_text("Log in")
    page.get_by_role("link", name="Sign in again").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def test_delete_my_account_and_the_model_forgets_it(page, live_server, published_model):
    from recommendations import store

    # A demo user the published model knows, with a stored list.
    user = (
        get_user_model()
        .objects.filter(ratings__isnull=False, is_staff=False)
        .exclude(username="demo")
        .distinct()
        .order_by("pk")
        .first()
    )
    user.set_password(PASSWORD)
    user.save()
    model = store.live_model()
    assert model.user_ratings([user.pk])[user.pk] is not None
    n = Rating.objects.filter(user=user).count()

    _log_in(page, live_server, user.username)
    page.goto(f"{live_server.url}/accounts/profile/")
    page.get_by_role("link", name="Delete your account").click()
    expect(page.get_by_role("main")).to_contain_text(f"with its {n} ratings")
    expect(page.get_by_role("main")).to_contain_text("the recommendations forget them")
    page.get_by_label("Your password").fill("not my password")
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_text("That is not your password.")).to_be_visible()
    assert get_user_model().objects.filter(pk=user.pk).exists()

    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()
    expect(page.get_by_text(f"The account {user.username} and its {n} ratings were deleted."))
    assert not get_user_model().objects.filter(pk=user.pk).exists()
    assert not Rating.objects.filter(user_id=user.pk).exists()
    # The incremental update (run inline here) dropped their ratings and stored list.
    model = store.live_model()
    stored = model.user_ratings([user.pk])[user.pk]
    assert stored is None or len(stored) == 0
    assert model.ready_list(user.pk) is None
