"""The first minute on a fresh install: no model is published yet, and the page says so
truthfully, then turns personal by itself when the first model arrives."""

from io import StringIO

import pytest
from playwright.sync_api import expect

from tests.browser.test_rating_flows import rate_on_card

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def no_model_yet(redis_client, transactional_db, eager_celery):
    """The demo catalogue in the database, and an empty Redis: no model published."""
    from django.core.management import call_command

    from recommendations import pipeline, store

    store._client_for.cache_clear()
    pipeline.model_state_clear()
    call_command("seed_demo", "--items", "150", "--users", "120", verbosity=0, stdout=StringIO())
    assert store.live_model() is None
    yield
    pipeline.model_state_clear()


def test_while_the_first_model_is_prepared_the_page_says_so_and_fills_in_by_itself(
    page, live_server, sign_up, no_model_yet
):
    from recommendations import pipeline

    sign_up(page, "early")
    page.evaluate("window.__sameDocument = true")

    strip = page.locator("[data-onboarding]")
    target = int(strip.get_attribute("data-target"))
    cards = strip.locator("[data-card-item]")
    for n in range(target):
        rate_on_card(cards.nth(n), 5 if n % 2 else 4)
        expect(cards.nth(n).locator("[data-rating-status]")).to_contain_text("You rated")

    # Enough ratings, but no model yet: "being prepared", never "your suggestions are below"
    # beside a note asking for more ratings.
    panel = page.locator("#panel-people-like-you")
    expect(panel).to_have_attribute("data-pending", "")
    expect(panel).to_contain_text("being prepared")
    expect(panel).not_to_contain_text("rate a few more")
    progress = strip.locator("[data-onboarding-progress]")
    expect(progress).to_contain_text("being prepared")
    expect(progress).not_to_contain_text("below.")
    expect(page.locator("#panel-because-you-rated")).to_be_hidden()
    assert page.evaluate("window.__sameDocument") is True

    # Coming back to the home page later (so only panels.js is checking: rating.js's
    # follow-ups after a rating are not running), still before the first model.
    page.goto(live_server.url)
    expect(page.locator("#panel-people-like-you")).to_contain_text("being prepared")
    page.evaluate("window.__sameDocument = true")

    # The first model is published (what the worker does on a fresh install).
    run = pipeline.recompute_sync()
    assert run.version, run.error

    # The panel turns personal by itself: no click, no reload; the rows follow.
    panel = page.locator("#panel-people-like-you")
    expect(panel).to_have_attribute("data-source", "personal", timeout=60_000)
    expect(panel.locator("[data-card-item]").first).to_be_visible()
    expect(page.locator("#panel-people-like-you")).not_to_have_attribute("data-pending", "")
    expect(page.locator("#panel-because-you-rated .because-row").first).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True
