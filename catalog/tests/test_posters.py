"""Every item has a picture and a paragraph: generated posters, blurbs and demo titles."""

import re
from xml.etree import ElementTree

import pytest
from django.urls import reverse

from catalog import blurbs, demo_data, posters
from catalog.tests.factories import GenreFactory, ItemFactory, UserFactory

SVG = "{http://www.w3.org/2000/svg}"


def _poster(title="The Lost Map", year=1999, genres=("Adventure",)):
    return posters.poster_svg(title=title, year=year, genres=list(genres))


def test_a_poster_is_the_same_svg_every_time_and_differs_by_title_and_genre():
    assert _poster() == _poster()
    assert _poster() != _poster(title="The Lost River")
    assert _poster() != _poster(genres=("Horror",))
    # Genre order does not matter: imports list them in any order.
    assert _poster(genres=("Drama", "War")) == _poster(genres=("War", "Drama"))


def test_a_poster_sets_the_title_in_the_picture_and_names_itself():
    root = ElementTree.fromstring(_poster(title="Dr. Strangelove or: How I Learned to Love"))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.get("aria-label") == "Poster for Dr. Strangelove or: How I Learned to Love: " + (
        "mountains under a sun"
    )
    lines = [t.text for t in root.iter(f"{SVG}tspan")]
    assert " ".join(lines) == "Dr. Strangelove or: How I Learned to Love"
    assert 1 < len(lines) <= 4
    assert "1999" in [t.text for t in root.iter(f"{SVG}text")]


def test_a_poster_escapes_the_title_and_loads_nothing():
    svg = _poster(title='<script>alert(1)</script> & "Friends"')
    root = ElementTree.fromstring(svg)  # well-formed despite the markup in the title
    assert "<script" not in svg and root.find(f"{SVG}script") is None
    assert "href" not in svg and "url(http" not in svg and "@import" not in svg


def test_each_genre_has_its_own_palette_and_motif_and_unknown_genres_get_one_too():
    styles = {name: posters.style_for([name]) for name in demo_data.GENRES}
    assert len({(s.top, s.accent) for s in styles.values()}) == len(demo_data.GENRES)
    for name in ("Film-Noir", "Musical", "Mystery", "War", "Western", "Children's"):
        assert posters.style_for([name]) is not posters.style_for(["unknown"])
    assert _poster(genres=("Made-up genre",)).startswith("<svg")
    assert posters.main_genre(["Comedy", "Horror"]) == "Horror"


def test_a_very_long_title_still_fits_in_four_lines():
    root = ElementTree.fromstring(_poster(title="Word " * 40))
    assert len(list(root.iter(f"{SVG}tspan"))) == 4


@pytest.mark.django_db
def test_the_poster_view_serves_svg_cached_for_good_at_its_current_url(client):
    item = ItemFactory(title="Quiet Orbit", year=1984, genres=[GenreFactory(name="Sci-Fi")])
    response = client.get(item.poster_url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response["Content-Security-Policy"] == "default-src 'none'"
    assert response.content.decode() == _poster("Quiet Orbit", 1984, ["Sci-Fi"])
    # An out-of-date URL (the title changed since) is answered but kept only briefly.
    stale = client.get(reverse("catalog:item_poster", args=[item.pk]), {"v": "0000"})
    assert stale.status_code == 200 and "max-age=300" in stale["Cache-Control"]
    item.title = "Loud Orbit"
    item.save()
    assert item.poster_url != response.request["PATH_INFO"] + "?" + response.request["QUERY_STRING"]


@pytest.mark.django_db
def test_no_poster_for_an_inactive_or_missing_item(client):
    hidden = ItemFactory(is_active=False)
    assert client.get(reverse("catalog:item_poster", args=[hidden.pk])).status_code == 404
    assert client.get(reverse("catalog:item_poster", args=[hidden.pk + 99])).status_code == 404
    assert client.post(reverse("catalog:item_poster", args=[hidden.pk])).status_code == 405


@pytest.mark.django_db
def test_the_item_page_shows_the_poster_with_alt_text_and_cards_with_an_empty_alt(client):
    drama = GenreFactory(name="Drama")
    item = ItemFactory(title="Long Summer", genres=[drama])
    page = client.get(item.get_absolute_url()).content.decode()
    assert f'<img class="poster" src="{item.poster_url}"' in page
    assert 'alt="Poster for Long Summer: a low sun over water"' in page
    services_user = UserFactory()
    from catalog import services

    services.rating_upsert(user=services_user, item=item, score=4)
    home = client.get(reverse("home")).content.decode()
    assert f'<img src="{item.poster_url}" alt="" loading="lazy">' in home


@pytest.mark.django_db
def test_an_imported_item_without_description_gets_a_true_one_at_display_time(client):
    item = ItemFactory(
        title="Toy Story",
        year=1995,
        description="",
        genres=[GenreFactory(name=n) for n in ("Animation", "Children's", "Comedy")],
    )
    page = client.get(item.get_absolute_url()).content.decode()
    assert "Toy Story is a 1995 animated family comedy." in page
    item.description = "Written by a person."
    item.save()
    assert "Written by a person." in client.get(item.get_absolute_url()).content.decode()


@pytest.mark.parametrize(
    ("year", "genres", "expected"),
    [
        (1995, ["Action", "Adventure", "Thriller"], "a 1995 action, adventure and thriller film"),
        (1922, ["Horror"], "a 1922 horror film"),
        (1880, ["Drama"], "an 1880 drama"),
        (None, [], "a film"),
        (1950, ["Film-Noir", "Crime"], "a 1950 noir crime film"),
    ],
)
def test_kind_of_film_reads_as_english(year, genres, expected):
    assert blurbs.kind_of_film(year, genres) == expected


def test_demo_titles_are_grammatical():
    """No "A Paris Hearts" (an article before a plural) or "A Artificial Colony"."""
    catalogue = demo_data.build(n_items=2000, n_users=10, seed=7)
    plural_or_mass = {
        noun.split()[0]
        for _, nouns in demo_data._WORDS.values()
        for noun in nouns
        if not noun.endswith(" S")
    }
    for item in catalogue.items:
        words = item.title.split()
        if words[0] in ("A", "An"):
            assert words[-1] not in plural_or_mass, item.title
            assert words[0] == ("An" if words[1][0] in "AEIOU" else "A"), item.title
        assert not re.search(r"\b(\w+) of the \w+ \1\b", item.title), item.title


def test_demo_items_have_a_paragraph_that_names_them():
    catalogue = demo_data.build(n_items=200, n_users=10, seed=7)
    for item in catalogue.items:
        assert item.title in item.description and str(item.year) in item.description
        assert item.description.count(". ") >= 1 and len(item.description) > 120
    assert len({item.description for item in catalogue.items}) > 190
