"""The panels' cards made in Python (``recommendations.panel_cards``) are byte for byte the
cards ``templates/recommendations/_suggestion_card.html`` renders, escaping included."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import set_script_prefix

from catalog.selectors import item_cards
from catalog.tests.factories import GenreFactory, ItemFactory, UserFactory
from recommendations.panel_cards import CardRenderer
from recommendations.templatetags.recommendation_panels import PanelCard

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert('x')</script> & \"Q\""


@pytest.fixture
def items():
    hostile_genre = GenreFactory(name='Sci<Fi> & "Co"', slug="scifi")
    drama = GenreFactory(name="Drama", slug="drama")
    return [
        ItemFactory(title=HOSTILE, year=1999, genres=[hostile_genre, drama]),
        ItemFactory(title="Plain", year=None),
        ItemFactory(title="L'été — «Ünïcode»", year=2024, genres=[drama]),
    ]


def _template_card(item, reason, *, user, csrf_token, page_path) -> str:
    context = {
        "item": item,
        "reason": reason,
        "user": user,
        "csrf_token": csrf_token,
        "page_path": page_path,
    }
    return render_to_string("recommendations/_suggestion_card.html", context)


@pytest.mark.parametrize("signed_in", [True, False])
@pytest.mark.parametrize("page_path", ["", '/items/?q=a&b="c"\'<d>'])
@pytest.mark.parametrize("reason", ["", "12 people rated both", HOSTILE])
def test_python_cards_equal_the_template_for_cards_and_orm_items(
    items, signed_in, page_path, reason
):
    user = UserFactory() if signed_in else AnonymousUser()
    token = "tok<en>&\"'"
    cards = item_cards([item.pk for item in items])
    renderer = CardRenderer(user=user, csrf_token=token, page_path=page_path)
    for item in items:
        for shown in (cards[item.pk], item):  # light card and ORM instance
            expected = _template_card(
                shown, reason, user=user, csrf_token=token, page_path=page_path
            )
            assert renderer.card(shown, reason) == expected


def test_cards_follow_the_script_prefix(items):
    """URLs are reversed once per panel, under the request's script prefix."""
    user = UserFactory()
    set_script_prefix("/shop/")
    try:
        expected = _template_card(items[0], "r", user=user, csrf_token="t", page_path="/")
        html = CardRenderer(user=user, csrf_token="t", page_path="/").card(items[0], "r")
    finally:
        set_script_prefix("/")
    assert 'href="/shop/items/' in html and html == expected


def test_a_panel_renders_all_its_cards_in_order(items):
    request = RequestFactory().get("/")
    request.user = UserFactory()
    panel = [PanelCard(item, f"reason {n}") for n, item in enumerate(items)]
    html = Template("{% load recommendation_panels %}{% suggestion_cards cards %}").render(
        Context({"request": request, "user": request.user, "cards": panel, "csrf_token": "t"})
    )
    expected = "".join(
        _template_card(c.item, c.reason, user=request.user, csrf_token="t", page_path="")
        for c in panel
    )
    assert html == expected


def test_signed_out_cards_never_read_the_csrf_token(items):
    """Reading the token makes the response set a CSRF cookie; the template never read it
    for someone signed out, so neither may the cards."""

    class Untouchable:
        def __str__(self):
            raise AssertionError("the CSRF token was read")

    html = CardRenderer(user=AnonymousUser(), csrf_token=Untouchable(), page_path="").card(
        items[1], ""
    )
    assert "csrfmiddlewaretoken" not in html
