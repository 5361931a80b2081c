"""The catalogue page: filters that work with and without JavaScript, numbered pages,
search hints; and My ratings' numbered pages."""

import re

import pytest
from django.urls import reverse

from catalog import services
from catalog.tests.factories import GenreFactory, ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


def _page_links(html: str) -> list[str]:
    nav = re.search(r'<nav class="pagination".*?</nav>', html, re.S).group(0)
    return [re.sub(r"<[^>]+>", "", m).replace("Page ", "").strip()
            for m in re.findall(r"<a [^>]*>(.*?)</a>", nav, re.S)]  # fmt: skip


def test_filters_submit_on_change_with_a_script_file_and_keep_apply_for_no_js(client):
    GenreFactory(name="Drama", slug="drama")
    html = client.get(reverse("catalog:item_list")).content.decode()
    assert "js/filters.js" in html
    assert re.search(r'<select name="genre" data-autosubmit', html)
    assert re.search(r'<select name="sort" data-autosubmit', html)
    assert re.search(r'<button type="submit" data-apply>Apply</button>', html)
    # No inline script anywhere: the site is headed for a strict CSP.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\son(change|click|submit)=", html)


def test_catalogue_pages_are_numbered_with_first_last_and_a_window(client):
    for n in range(24 * 12):
        ItemFactory(title=f"Film {n:03d}")
    html = client.get(reverse("catalog:item_list"), {"page": 6, "sort": "title"}).content.decode()
    assert _page_links(html) == ["← Previous", "1", "4", "5", "6", "7", "8", "12", "Next →"]
    assert re.search(r'<a href="\?sort=title&amp;page=6" aria-current="page">', html)
    assert html.count('aria-current="page"') == 1
    first = client.get(reverse("catalog:item_list"), {"sort": "title"}).content.decode()
    assert _page_links(first) == ["1", "2", "3", "12", "Next →"]


def test_a_misspelt_search_says_what_it_matched_instead(client):
    ItemFactory(title="The Dark Colony")
    html = client.get(reverse("catalog:item_list"), {"q": "drak"}).content.decode()
    assert "1 result for “drak”" in html
    assert "“drak” also matched dark." in html
    html = client.get(reverse("catalog:item_list"), {"q": "zzzzqx"}).content.decode()
    assert "No title has a word like “zzzzqx”." in html


def test_my_ratings_pages_are_numbered(client):
    user = UserFactory()
    for n in range(120):
        services.rating_upsert(user=user, item=ItemFactory(title=f"Film {n:03d}"), score=4)
    client.force_login(user)
    html = client.get(reverse("catalog:my_ratings"), {"page": 2}).content.decode()
    assert _page_links(html) == ["← Previous", "1", "2", "3", "Next →"]
    assert re.search(r'href="\?page=2" aria-current="page"', html)


def test_my_ratings_sort_applies_at_once_too(client):
    user = UserFactory()
    services.rating_upsert(user=user, item=ItemFactory(), score=4)
    client.force_login(user)
    html = client.get(reverse("catalog:my_ratings")).content.decode()
    assert '<form class="filters" method="get" action="" data-filters>' in html
    assert re.search(r'<select name="sort" data-autosubmit', html)
    assert '<button type="submit" data-apply>Apply</button>' in html
