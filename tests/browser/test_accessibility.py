"""Accessibility in a real browser: axe-core on every main page, the star control's
contrast in each state, unique names without JavaScript, form errors that take focus,
and a rating's confirmation in view on a phone."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from catalog.models import Item
from catalog.tests.factories import ItemFactory, UserFactory
from tests.browser.test_rating_flows import rate_on_card

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "a-long-pass-phrase"


def _log_in(page, live_server, username):
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("main").get_by_role("button", name="Log in").click()
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()


def _demo_user():
    demo = get_user_model().objects.get(username="demo")
    demo.set_password(PASSWORD)
    demo.save()
    return demo


def _serious_violations(page) -> list[dict]:
    """axe-core's serious and critical findings on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async () => {
          const result = await axe.run(document, {resultTypes: ["violations"]});
          return result.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ")),
          }));
        }"""
    )
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def test_axe_finds_no_serious_violation_on_the_main_pages(browser, live_server, published_model):
    if not AXE.exists():
        pytest.skip(
            f"{AXE} is missing: `make install-dev` installs the pinned axe-core with npm "
            "(.ci/run installs npm where it is absent)"
        )
    _demo_user()
    item = Item.objects.order_by("-rating_count").first()
    # The check is injected as a script: let it past a Content-Security-Policy.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    found = {}
    try:
        signed_out = {"home": "/", "sign-up": "/accounts/signup/", "log-in": "/accounts/login/"}
        for name, path in signed_out.items():
            page.goto(f"{live_server.url}{path}")
            found[f"{name} (signed out)"] = _serious_violations(page)
        # A form with errors is a page of its own.
        page.locator("main").get_by_role("button", name="Log in").click()
        expect(page.locator("#form-errors")).to_be_visible()
        found["log-in with an error"] = _serious_violations(page)
        _log_in(page, live_server, "demo")
        signed_in = {
            "home": "/",
            "item": item.get_absolute_url(),
            "catalogue": "/items/",
            "my ratings": "/items/mine/",
        }
        for name, path in signed_in.items():
            page.goto(f"{live_server.url}{path}")
            found[f"{name} (signed in)"] = _serious_violations(page)
    finally:
        context.close()
    assert {page: v for page, v in found.items() if v} == {}
    assert len(found) == 8


def _luminance(rgb: tuple[float, float, float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(first: tuple, second: tuple) -> float:
    """WCAG 2 contrast ratio of two opaque sRGB colours."""
    light, dark = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _rgb(css: str) -> tuple[float, float, float]:
    numbers = css[css.index("(") + 1 : css.index(")")].replace("/", ",").split(",")
    values = [float(n) for n in numbers]
    assert len(values) == 3 or values[3] == 1, f"translucent colour {css}"
    return tuple(values[:3])


# The background a control sits on: the first ancestor with an opaque colour.
_BACKGROUND = """el => {
  for (let node = el; node; node = node.parentElement) {
    const colour = getComputedStyle(node).backgroundColor;
    if (colour !== "rgba(0, 0, 0, 0)" && colour !== "transparent") return colour;
  }
  return "rgb(255, 255, 255)";
}"""


def _colours(locator, script: str) -> str:
    return locator.evaluate(script)


def test_every_state_of_the_star_controls_has_3_to_1_contrast(page, live_server, transactional_db):
    """WCAG 1.4.11: outline (empty), filled, hover and focus, on the item page's control
    and on a card's compact one (measured from the computed styles)."""
    item = ItemFactory(title="Contrast Check")
    UserFactory(username="eyes")
    _log_in(page, live_server, "eyes")
    page.goto(f"{live_server.url}/items/")
    card = page.locator(f'[data-card-item="{item.pk}"]')
    meter = card.locator("[data-star-meter]")
    background = _rgb(meter.evaluate(_BACKGROUND))
    states = {}
    states["card: empty stars"] = meter.evaluate(
        "m => getComputedStyle(m, '::before').backgroundColor"
    )
    rate_on_card(card, 3)
    expect(card.locator("[data-rating-status]")).to_have_text("You rated 3")
    states["card: filled stars"] = card.locator(".star-fill").evaluate(
        "f => getComputedStyle(f).backgroundColor"
    )
    box = meter.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.95, box["y"] + box["height"] / 2)
    expect(meter).to_have_class("star-meter is-preview")
    states["card: hover preview"] = card.locator(".star-fill").evaluate(
        "f => getComputedStyle(f).backgroundColor"
    )
    page.mouse.move(0, 0)
    card.locator(".star-select").focus()
    page.keyboard.press("Shift")  # a key press: the focus now counts as keyboard focus
    assert meter.evaluate("m => getComputedStyle(m).outlineStyle") == "solid"
    states["card: focus ring"] = meter.evaluate("m => getComputedStyle(m).outlineColor")

    page.goto(f"{live_server.url}{item.get_absolute_url()}")
    row = page.locator("article.item .star-row")
    star = row.locator("label.star")
    full_background = _rgb(row.evaluate(_BACKGROUND))
    states["item: empty stars"] = star.nth(9).evaluate("s => getComputedStyle(s).color")
    states["item: filled stars"] = star.nth(5).evaluate("s => getComputedStyle(s).color")
    star.nth(7).hover()
    states["item: hover"] = star.nth(7).evaluate("s => getComputedStyle(s).color")
    page.mouse.move(0, 0)
    row.locator(".star-input").nth(5).focus()
    page.keyboard.press("Shift")
    assert row.evaluate("r => getComputedStyle(r).outlineStyle") == "solid"
    states["item: focus ring"] = row.evaluate("r => getComputedStyle(r).outlineColor")

    ratios = {
        state: round(
            contrast(_rgb(colour), background if state.startswith("card") else full_background),
            2,
        )
        for state, colour in states.items()
    }
    assert all(ratio >= 3 for ratio in ratios.values()), ratios
    # The states differ from each other too, so each one shows.
    assert len({states["card: empty stars"], states["card: filled stars"]}) == 2
    assert states["card: hover preview"] != states["card: filled stars"]


def test_without_javascript_every_button_and_control_has_its_own_name(
    browser, live_server, published_model
):
    _demo_user()
    item = Item.objects.order_by("-rating_count").first()
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        _log_in(page, live_server, "demo")
        for path in (item.get_absolute_url(), "/", "/items/"):
            page.goto(f"{live_server.url}{path}")
            # Every rating form's button and stars are named for the item they rate (an
            # item shown in two panels has two forms of the same name, as it should).
            forms = page.locator("main form[data-rating-form]").evaluate_all(
                """forms => forms.map(form => {
                  const card = form.closest("[data-card-item]");
                  const title = card ? card.querySelector(".card-title").textContent
                                     : document.querySelector("h1").firstChild.textContent;
                  const name = el => el && el.textContent.replace(/\\s+/g, " ").trim();
                  const select = form.querySelector("select");
                  return [title.trim(), name(form.querySelector("button")),
                          select && select.getAttribute("aria-label")];
                })"""
            )
            assert len(forms) > 1, path
            for title, button, stars in forms:
                assert button == f"Save rating for {title}", (path, button)
                assert stars in (None, f"Stars for {title}"), (path, stars)
            if path == item.get_absolute_url():
                names = page.locator("main button:visible").evaluate_all(
                    "els => els.map(el => el.textContent.replace(/\\s+/g, ' ').trim())"
                )
                assert len(names) == len(set(names)), names
        page.goto(f"{live_server.url}{item.get_absolute_url()}")
        expect(page.get_by_role("button", name=f"Save rating for {item.title}")).to_be_visible()
    finally:
        context.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_sign_up_errors_take_the_focus_and_sit_under_their_field(
    browser, live_server, transactional_db, javascript
):
    context = browser.new_context(java_script_enabled=javascript)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/signup/")
        page.locator("#id_username").fill("newcomer")
        page.locator("#id_password1").fill("abc")
        page.locator("#id_password2").fill("abd")
        page.locator("main").get_by_role("button", name="Sign up").click()
        summary = page.locator("#form-errors")
        expect(summary).to_be_focused()
        expect(summary).to_have_attribute("role", "alert")
        expect(page.locator("#id_password2_error")).to_contain_text("didn’t match")
        # Each message is read with its field.
        expect(page.locator("#id_password2")).to_have_attribute("aria-invalid", "true")
        described = page.locator("#id_password2").get_attribute("aria-describedby")
        assert "id_password2_error" in described.split()
        if javascript:  # the site's script puts the focus in the field a link names
            summary.get_by_role("link", name="Password confirmation").click()
            expect(page.locator("#id_password2")).to_be_focused()
    finally:
        context.close()


def test_a_short_password_is_reported_under_the_password_field(page, live_server, transactional_db):
    page.goto(f"{live_server.url}/accounts/signup/")
    page.locator("#id_username").fill("newcomer")
    page.locator("#id_password1").fill("abc")
    page.locator("#id_password2").fill("abc")
    page.locator("main").get_by_role("button", name="Sign up").click()
    expect(page.locator("#id_password1_error")).to_contain_text("too short")
    expect(page.locator("#id_password2_error")).to_have_count(0)
    error = page.locator("#id_password1_error").bounding_box()
    password = page.locator("#id_password1").bounding_box()
    confirmation = page.locator("#id_password2").bounding_box()
    assert password["y"] < error["y"] < confirmation["y"]


def test_a_failed_log_in_is_announced_and_takes_the_focus(page, live_server, transactional_db):
    UserFactory(username="known")
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("#id_username").fill("known")
    page.locator("#id_password").fill("wrong password")
    page.locator("main").get_by_role("button", name="Log in").click()
    summary = page.locator("#form-errors")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Please enter a correct username and password")
    expect(page.locator("#id_password")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_password")).to_have_attribute("aria-describedby", "form-errors")


def test_on_a_phone_a_rating_halfway_down_is_confirmed_in_view(
    browser, live_server, transactional_db
):
    for n in range(24):
        ItemFactory(title=f"Phone Item {n:02d}")
    UserFactory(username="phone")
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        _log_in(page, live_server, "phone")
        page.goto(f"{live_server.url}/items/?sort=title")
        card = page.locator("[data-card-item]").nth(13)
        card.scroll_into_view_if_needed()
        assert page.evaluate("window.scrollY") > 844  # well down the page
        meter = card.locator("[data-star-meter]")
        box = meter.bounding_box()
        page.touchscreen.tap(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
        status = card.locator("[data-rating-status]")
        expect(status).to_have_text("You rated 4")
        expect(status).to_be_in_viewport()
        message = page.locator("#live-messages .message")
        expect(message).to_contain_text("You rated Phone Item 13 (2000) 4.")
        expect(message).to_be_in_viewport()
    finally:
        context.close()
