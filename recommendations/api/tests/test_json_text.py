"""me/recommendations/ writes its list as JSON text from parts (``recommendation_list_json``):
the bytes must be DRF's renderer's for the same list, whatever the titles, numbers and
cards hold; anything the writer does not take goes back to the renderer."""

import json
import random
from decimal import Decimal

import numpy as np
import pytest
from rest_framework.renderers import JSONRenderer

from catalog.cards import GenreCard, ItemCard
from catalog.models import Item
from recommendations import reads, store
from recommendations.api.serializers import recommendation_list, recommendation_list_json
from recommendations.reads import RecommendationList, Suggestion

URL = "/api/v1/me/recommendations/"

# Characters JSON escapes, or DRF does after (U+2028, U+2029), or that are not ASCII.
CHARACTERS = 'ab Z09"\\/\b\f\n\r\t\x00\x1f\x7f é«»ß中文\u2028\u2029\ud7ff😀<>&'
NUMBERS = [0.0, -0.0, 1.0, 0.1 + 0.2, 1e-05, 1e-7, 1e16, 1e17, 123456789.125, 4.333333333333333]


def _text(rng) -> str:
    return "".join(rng.choice(CHARACTERS) for _ in range(rng.randrange(0, 12)))


def _card(rng, item_id, memo) -> ItemCard:
    genres = [GenreCard(rng.randrange(99), _text(rng), _text(rng)) for _ in range(rng.randrange(4))]
    count = rng.choice([0, 0, 1, 3, 1000, 2**40])
    total = rng.choice(NUMBERS) * count if rng.random() < 0.5 else rng.uniform(0, 5) * count
    year = rng.choice([None, 0, 1995, 2024])
    return ItemCard(item_id, _text(rng), year, True, count, total, genres, memo)


def _random_list(rng) -> RecommendationList:
    suggestions = []
    for i in range(rng.randrange(0, 12)):
        card = _card(rng, i, {} if rng.random() < 0.5 else None)
        because = [_card(rng, 100 + j, rng.choice([{}, None])) for j in range(rng.randrange(4))]
        score = rng.choice([*NUMBERS, rng.uniform(-2, 6), np.float32(rng.uniform(0, 5))])
        suggestions.append(Suggestion(card, score, _text(rng), because))
    return RecommendationList(
        suggestions,
        rng.choice(reads.SOURCES),
        rng.choice([None, "20261201T132217-2-fb8753", _text(rng)]),
        _text(rng),
        rng.random() < 0.5,
    )


def _drf(result, explain) -> bytes:
    return JSONRenderer().render(recommendation_list(result, explain=explain), "application/json")


def _written(text: str) -> bytes:
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


@pytest.mark.parametrize("seed", range(40))
def test_the_text_is_drfs_rendering_byte_for_byte(seed):
    rng = random.Random(seed)
    for _ in range(25):
        result, explain = _random_list(rng), rng.random() < 0.5
        expected = _drf(result, explain)
        assert _written(recommendation_list_json(result, explain=explain)) == expected
        # Again, with the cards' kept text written the first time.
        assert _written(recommendation_list_json(result, explain=explain)) == expected


def test_kept_text_is_per_memo_so_a_new_generations_card_is_written_afresh():
    memo = {}
    old = ItemCard(1, "Old title", 1990, True, 2, 7.0, [], memo)
    one = RecommendationList([Suggestion(old, 1.0, "why")], "personal", "v1")
    assert '"title":"Old title"' in recommendation_list_json(one, explain=False)
    assert memo  # kept with the card's static parts
    new = ItemCard(1, "New title", 1990, True, 2, 7.0, [], {})  # another generation's parts
    two = RecommendationList([Suggestion(new, 1.0, "why")], "personal", "v1")
    assert _written(recommendation_list_json(two, explain=False)) == _drf(two, False)
    assert "New title" in recommendation_list_json(two, explain=False)


@pytest.mark.parametrize(
    "change",
    [
        {"score": float("nan")},
        {"score": float("inf")},
        {"reason": b"bytes"},  # DRF's encoder decodes bytes: the renderer decides
        {"average": Decimal(7)},  # a Decimal sum: a Decimal average
        {"count": np.int64(3)},
        {"average": float("inf")},
    ],
)
def test_values_the_writer_does_not_take_go_back_to_the_renderer(change):
    card = ItemCard(1, "T", 2000, True, 2, 7.0, [], {})
    if "count" in change:
        card.rating_count = change["count"]
    if "average" in change:
        card.rating_sum = change["average"]
    suggestion = Suggestion(card, change.get("score", 1.0), change.get("reason", "why"))
    result = RecommendationList([suggestion], "personal", "v1")
    assert recommendation_list_json(result, explain=False) is None


def test_the_types_json_writes_alike_are_written_here_too():
    card = ItemCard(1, "T", 2000, True, True, 7.0, [], {})  # a bool count: true
    for reason in [None, "why"]:
        result = RecommendationList([Suggestion(card, 2, reason)], "personal", "v1")
        assert _written(recommendation_list_json(result, explain=False)) == _drf(result, False)


def test_items_that_are_model_instances_are_written_too(db):
    from catalog.tests.factories import GenreFactory, ItemFactory

    item = ItemFactory(title="Ünï «x»", year=None, genres=[GenreFactory(name="War", slug="war")])
    item = Item.objects.prefetch_related("genres").get(pk=item.pk)
    result = RecommendationList([Suggestion(item, 2.5, "r", [item])], "popular", None, "n")
    for explain in (False, True):
        assert _written(recommendation_list_json(result, explain=explain)) == _drf(result, explain)


# -- through the view -----------------------------------------------------------------------
@pytest.mark.parametrize("explain", ["false", "true"])
def test_the_view_answers_what_the_renderer_writes_for_its_list(reader, explain):
    # The fixture read once: a stored list, its cards' parts kept; the second time here
    # the cards' text is the kept one.
    for _ in range(2):
        response = reader.get(URL, {"limit": 10, "explain": explain})
        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
        body = response.content
        result = reads.recommendations_for_user(
            user=reader.user, limit=10, explain=explain == "true"
        )
        assert result.source == "personal" and result.suggestions
        assert body == _drf(result, explain == "true")


def test_an_indent_asked_for_is_still_the_renderers(reader):
    response = reader.get(URL, {"limit": 3}, HTTP_ACCEPT="application/json; indent=4")
    assert response.status_code == 200
    assert response.content.startswith(b'{\n    "source": ')
    assert json.loads(response.content)["results"]


def test_a_lines_first_item_gone_names_the_next_as_explain_does(published_model, db):
    """Without explain only each named line's first item is read; when it is gone the
    others are read, and the reason names the same item as with explain."""
    ids = list(Item.objects.order_by("pk").values_list("pk", flat=True)[:3])
    rows = np.zeros(2, dtype=store.READY_DTYPE)
    rows["item"] = ids[:2]
    rows["score"] = [2.0, 1.0]
    rows["people"] = 0  # no aggregate to quote: the line names an item
    gone = max(Item.objects.values_list("pk", flat=True)) + 1000
    rows["because_items"] = [[gone, ids[2], -1], [ids[2], -1, -1]]
    rows["because_users"] = -1
    plain = reads._suggestions(rows, explain=False)
    explained = reads._suggestions(rows, explain=True)
    title = Item.objects.get(pk=ids[2]).title
    assert [s.reason for s in plain] == [s.reason for s in explained]
    assert all(title in s.reason for s in plain)
    assert [i.pk for i in explained[0].because_items] == [ids[2]]
