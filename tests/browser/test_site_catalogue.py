"""The catalogue in the browser: a misspelt search, filters that apply at once, numbered
pages; the 404 page, the favicon, and the admin's recompute runs at 1280 px."""

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from catalog.tests.factories import GenreFactory, ItemFactory
from recommendations.models import RecomputeRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def catalogue():
    scifi = GenreFactory(name="Sci-Fi", slug="sci-fi")
    drama = GenreFactory(name="Drama", slug="drama")
    ItemFactory(title="The Dark Colony", genres=[scifi], rating_count=7)
    ItemFactory(title="Dark Harbour", genres=[drama], rating_count=3)
    for n in range(24 * 8):
        ItemFactory(title=f"Quiet Story {n:03d}", genres=[drama], rating_count=n % 5)


def _titles(page) -> list[str]:
    return page.locator(".cards [data-card-item] a[href^='/items/']").evaluate_all(
        "links => links.map(a => a.textContent.trim())"
    )


def test_a_misspelt_search_from_the_header_finds_the_titles(page, live_server, catalogue):
    page.goto(live_server.url)
    search = page.get_by_role("searchbox", name="Search titles").first
    search.fill("colony drak")
    search.press("Enter")
    expect(page.get_by_text("1 result for “colony drak”")).to_be_visible()
    expect(page.get_by_text("“drak” also matched dark.")).to_be_visible()
    expect(page.locator(".cards")).to_contain_text("The Dark Colony")
    page.goto(f"{live_server.url}/items/?q=A")
    expect(page.get_by_text("0 results for “A”")).to_be_visible()


def test_filters_apply_at_once_and_keep_focus(page, live_server, catalogue):
    page.goto(f"{live_server.url}/items/?q=dark")
    filters = page.locator("form[data-filters]")
    expect(filters.get_by_role("button", name="Apply")).to_be_hidden()
    genre = filters.get_by_label("Genre")
    genre.focus()
    genre.select_option("sci-fi")
    page.wait_for_url(re.compile(r"genre=sci-fi"))
    expect(page.get_by_text("1 result for “dark”")).to_be_visible()
    expect(page.locator(".cards")).to_contain_text("The Dark Colony")
    expect(page.locator("form[data-filters] select[name=genre]")).to_be_focused()
    page.locator("form[data-filters]").get_by_label("Sort").select_option("title")
    page.wait_for_url(re.compile(r"sort=title"))
    assert "q=dark" in page.url and "genre=sci-fi" in page.url


def test_filters_work_without_javascript(browser, live_server, catalogue):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/items/?q=dark")
        apply = page.locator("form[data-filters]").get_by_role("button", name="Apply")
        expect(apply).to_be_visible()
        page.locator("form[data-filters]").get_by_label("Genre").select_option("drama")
        assert "genre" not in page.url  # nothing happens until Apply
        apply.click()
        page.wait_for_url(re.compile(r"genre=drama"))
        expect(page.locator(".cards")).to_contain_text("Dark Harbour")
    finally:
        context.close()


def test_numbered_pagination(page, live_server, catalogue):
    page.goto(f"{live_server.url}/items/?sort=title")
    pages = page.get_by_role("navigation", name="Pages")
    expect(pages.locator("[aria-current=page]")).to_have_text("Page 1")
    pages.get_by_role("link", name="Page 9").click()  # the last page, always linked
    expect(pages.locator("[aria-current=page]")).to_have_text("Page 9")
    pages.get_by_role("link", name="Page 7").click()
    expect(pages.locator("[aria-current=page]")).to_have_text("Page 7")
    assert "sort=title" in page.url and "page=7" in page.url
    expect(pages.get_by_role("link", name="Page 1", exact=True)).to_be_visible()
    expect(pages.get_by_role("link", name="Next →")).to_be_visible()


def test_an_unknown_address_shows_the_sites_404(page, live_server):
    response = page.goto(f"{live_server.url}/no/such/page/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    page.get_by_role("link", name="Browse or search the catalogue").click()
    expect(page.get_by_role("heading", name="Catalogue")).to_be_visible()


def test_no_console_errors_and_a_favicon(page, live_server, catalogue):
    errors, failed = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.goto(live_server.url)
    page.goto(f"{live_server.url}/items/")
    page.wait_for_load_state("networkidle")
    icon = page.evaluate("fetch('/favicon.ico').then(r => [r.status, r.url])")
    assert icon[0] == 200 and icon[1].endswith("/static/img/favicon.svg")
    assert errors == [] and failed == []
    expect(page.locator('link[rel="icon"]')).to_have_attribute("href", "/static/img/favicon.svg")


def test_admin_runs_list_fits_1280px_and_cannot_delete(page, live_server):
    get_user_model().objects.create_superuser("boss", "boss@example.com", "a-long-pass-phrase")
    RecomputeRun.objects.create(
        status="failed", trigger="admin", error="ValueError: " + "a very long reason " * 40,
        shards_total=8, shards_done=3, n_ratings=31_000, n_users=600, n_items=2_000,
    )  # fmt: skip
    RecomputeRun.objects.create(
        status="succeeded", trigger="schedule", shards_total=8, shards_done=8,
        n_ratings=31_000, n_users=600, n_items=2_000,
    )  # fmt: skip
    page.goto(f"{live_server.url}/admin/login/")
    expect(page).to_have_title(re.compile("Recsite admin"))
    page.locator("#id_username").fill("boss")
    page.locator("#id_password").fill("a-long-pass-phrase")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_have_text("Recsite administration")
    page.goto(f"{live_server.url}/admin/recommendations/recomputerun/")
    table = page.locator("#result_list")
    for column in ["Status", "Duration", "Progress", "Error"]:
        expect(table.get_by_role("columnheader", name=column)).to_be_visible()
    # Nothing scrolls sideways: not the page, not the admin's results box.
    widths = page.evaluate(
        """() => {
          const page = document.documentElement, box = document.querySelector('.results');
          const error = document.querySelector('#result_list th.column-short_error');
          return [page.scrollWidth, page.clientWidth, box.scrollWidth, box.clientWidth,
                  error.getBoundingClientRect().right, box.getBoundingClientRect().right];
        }"""
    )
    assert widths[0] <= widths[1] and widths[2] <= widths[3] and widths[4] <= widths[5], widths
    expect(page.locator("select[name=action] option[value=delete_selected]")).to_have_count(0)
    page.locator("#result_list a").filter(has_text=re.compile(r"^\d+$")).last.click()
    expect(page.locator("#content")).to_contain_text("a very long reason " * 40)
    expect(page.get_by_role("link", name="Delete")).to_have_count(0)
