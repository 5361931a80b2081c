"""Sign up with genres in a real browser: the checkbox group is usable by its labels,
the first list appears at once on the home page, and axe-core finds nothing serious on
the pages involved."""

import pytest
from playwright.sync_api import expect

from recommendations import cold_start
from tests.browser.test_accessibility import AXE, _serious_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_up_with_genres_shows_a_first_list_at_once(browser, live_server, published_model):
    cold_start.clear()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    found = {}
    try:
        page.goto(f"{live_server.url}/accounts/signup/")
        group = page.get_by_role("group", name="Genres you like")
        expect(group).to_be_visible()
        if AXE.exists():
            found["sign-up with genres"] = _serious_violations(page)
        page.locator("#id_username").fill("newcomer")
        page.locator("#id_password1").fill("a-long-pass-phrase")
        page.locator("#id_password2").fill("a-long-pass-phrase")
        group.get_by_role("checkbox", name="Sci-Fi").check()
        group.get_by_label("Comedy").check()
        page.locator("main").get_by_role("button", name="Sign up").click()

        panel = page.locator("#panel-people-like-you")
        expect(panel.get_by_role("heading", name="To start you off")).to_be_visible()
        expect(panel).to_have_attribute("data-source", "content")
        reasons = panel.locator(".reason")
        expect(reasons.first).to_be_visible()
        lines = reasons.all_inner_texts()
        assert len(lines) == 8
        assert all(line.startswith(("Popular in Sci-Fi", "Popular in Comedy")) for line in lines)
        if AXE.exists():
            found["home with a first list"] = _serious_violations(page)

        page.goto(f"{live_server.url}/accounts/profile/")
        profile_group = page.get_by_role("group", name="Genres you like")
        expect(profile_group.get_by_role("checkbox", name="Sci-Fi")).to_be_checked()
        expect(profile_group.get_by_role("checkbox", name="Drama")).not_to_be_checked()
        if AXE.exists():
            found["profile"] = _serious_violations(page)
    finally:
        context.close()
    if not AXE.exists():
        pytest.skip(f"{AXE} is missing: `make install-dev` installs axe-core with npm")
    assert {name: v for name, v in found.items() if v} == {}
