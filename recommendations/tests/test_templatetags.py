"""Template tags any template can use: the panels and the star rating control."""

import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.test import RequestFactory

from catalog.tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


def _render(source: str, **context) -> str:
    request = RequestFactory().get("/somewhere/?x=1")
    request.user = context.get("user", AnonymousUser())
    return Template(source).render(Context({"request": request, **context}))


def test_rating_control_is_a_labelled_radio_group_with_the_score_checked():
    item = ItemFactory(title="Dune")
    html = _render("{% load rating_controls %}{% rating_control item 3.5 %}", item=item)
    radios = re.findall(
        r'<input class="star-input" type="radio" name="score" value="([\d.]+)"', html
    )
    assert radios == [f"{n / 2:.1f}" for n in range(1, 11)]
    assert re.search(r'value="3\.5" id="[^"]+" checked>', html)
    assert html.count(" checked>") == 1
    # Each radio has its own label with words a screen reader can read out.
    for label in ["0.5 stars", "1 star", "4.5 stars", "5 stars"]:
        assert f'<span class="visually-hidden">{label}</span>' in html
    ids = re.findall(r'id="(rate-[^"]+)"', html)
    assert sorted(ids) == sorted(re.findall(r'for="(rate-[^"]+)"', html))
    assert "<legend>" in html and f'action="/items/{item.pk}/rate/"' in html
    # Without JavaScript the form has a submit button, named for its item.
    assert (
        '<button type="submit" class="rating-save">Save rating'
        '<span class="visually-hidden"> for Dune</span></button>'
    ) in html


def test_full_rating_controls_for_the_same_item_never_share_ids():
    item = ItemFactory()
    html = _render(
        "{% load rating_controls %}{% rating_control item %}"
        "{% rating_control item next_url='/back/' %}",
        item=item,
    )
    ids = re.findall(r'id="(rate-[^"]+)"', html)
    assert len(ids) == 20 == len(set(ids))
    assert "checked" not in html and 'name="next" value="/back/"' in html


def test_the_compact_control_is_one_select_and_a_star_meter_not_ten_radios():
    """Cards carry dozens of these: one labelled <select> of the ten scores (the keyboard
    and no-JavaScript control) and a two-element star meter, under 1 KB a card."""
    item = ItemFactory(title="Solaris")
    html = _render(
        "{% load rating_controls %}{% rating_control item 4.5 compact=True next_url='/' %}",
        item=item,
    )
    assert 'type="radio"' not in html and html.count("<select") == 1
    assert 'aria-label="Stars for Solaris"' in html
    options = re.findall(r"<option( selected)?>([\d.]+)", html)
    assert [value for _, value in options] == [f"{n / 2:g}" for n in range(1, 11)]
    assert [value for selected, value in options if selected] == ["4.5"]
    assert '<option value="">Rate…' in html  # "not rated" is a choice of its own
    assert '<span class="star-fill s9">' in html  # nine half stars filled
    assert 'Save<span class="visually-hidden"> rating for Solaris</span>' in html
    assert len(html.strip().encode()) < 1024


def test_an_unrated_compact_control_selects_nothing_and_fills_no_star():
    html = _render(
        "{% load rating_controls %}{% rating_control item None compact=True %}",
        item=ItemFactory(),
    )
    assert " selected" not in html and '<span class="star-fill s0">' in html


def test_panel_tags_render_in_any_template(rec_redis):
    """Without a published model they still render, with their fallback."""
    user = UserFactory()
    item = ItemFactory(title="Lonely")
    html = _render(
        "{% load recommendation_panels %}{% people_like_you user %}{% also_liked item %}",
        user=user,
        item=item,
    )
    assert 'id="panel-people-like-you"' in html and 'data-source="popular"' in html
    assert 'id="panel-also-liked"' in html
    # The refresh URL carries the page, so forms in a refreshed panel return to it.
    assert (
        'data-panel-url="/recommendations/panels/people-like-you/?next=%2Fsomewhere%2F%3Fx%3D1"'
        in html
    )


def test_people_like_you_renders_nothing_for_someone_signed_out(rec_redis):
    html = _render("{% load recommendation_panels %}{% people_like_you user %}")
    assert html.strip() == ""
