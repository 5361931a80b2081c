"""Content-Security-Policy and Permissions-Policy on every page, and nothing breaks
under them (item 9): no CSP violation in the console and no request leaving 127.0.0.1,
on the home page, an item page (signed in, with the rating script), Swagger UI and ReDoc.
"""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from catalog.tests.factories import ItemFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@pytest.fixture
def watched(page):
    """The page, and what it saw: console messages about CSP, requests to other hosts."""
    seen = {"csp": [], "remote": [], "errors": []}

    def on_console(message):
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            seen["csp"].append(message.text)

    def on_request(request):
        parts = urlsplit(request.url)
        if parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname not in LOCAL_HOSTS:
            seen["remote"].append(request.url)

    page.on("console", on_console)
    page.on("request", on_request)
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    return page, seen


def _assert_policies(response):
    headers = response.all_headers()
    policy = headers.get("content-security-policy", "")
    script_src = next((d for d in policy.split(";") if d.strip().startswith("script-src ")), "")
    assert "'self'" in script_src and "unsafe-inline" not in script_src, policy
    assert "geolocation=()" in headers.get("permissions-policy", "")


def test_site_pages_run_under_a_strict_policy(watched, live_server, redis_client):
    page, seen = watched
    item = ItemFactory(title="Dune")
    UserFactory(username="reader")
    _assert_policies(page.goto(f"{live_server.url}/"))
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("#id_username").fill("reader")
    page.locator("#id_password").fill("a-long-pass-phrase")
    page.locator("main").get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Signed in as reader")).to_be_visible()
    _assert_policies(page.goto(f"{live_server.url}/items/{item.pk}/"))
    page.get_by_title("4 stars", exact=True).first.click()
    expect(page.locator("[data-rating-status]").first).to_contain_text("You rated")
    assert seen == {"csp": [], "remote": [], "errors": []}


def test_swagger_ui_works_from_local_files_under_the_policy(watched, live_server):
    page, seen = watched
    _assert_policies(page.goto(f"{live_server.url}/api/docs/"))
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Recsite API", timeout=60_000)
    expect(page.locator(".opblock").first).to_be_visible()
    assert seen == {"csp": [], "remote": [], "errors": []}


def test_redoc_works_from_local_files_under_the_policy(watched, live_server):
    page, seen = watched
    _assert_policies(page.goto(f"{live_server.url}/api/redoc/"))
    # The first request builds the schema: slow on a busy machine.
    expect(page.get_by_role("heading", name="Recsite API").first).to_be_visible(timeout=60_000)
    page.wait_for_load_state("networkidle")
    assert seen == {"csp": [], "remote": [], "errors": []}
