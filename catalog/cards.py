"""Item cards: what a list shows of an item, without a model instance.

``catalog.selectors.item_cards`` reads them in one statement for the hottest lists (the
recommendation panels and ``me/recommendations/``). Building ``Item`` instances cost
about as much as running the query; a card answers to the same names the templates and
serializers use (``pk``, ``title``, ``year``, ``card_genres()``, ``rating_average``,
``get_absolute_url()``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from catalog.models import ItemDisplay


@dataclass(frozen=True, slots=True)
class GenreCard:
    id: int
    name: str
    slug: str


@dataclass(eq=False, slots=True)
class ItemCard(ItemDisplay):
    id: int
    title: str
    year: int | None
    is_active: bool
    rating_count: int
    rating_sum: float
    genres: list[GenreCard] = field(default_factory=list)
    # For a card whose static parts came from ``static_parts``: a dict kept with those
    # parts (one per item and generation), where readers may keep what they derive from
    # title, year and genres alone (the API keeps the card's JSON text there). None for
    # cards read whole: nothing derived from them is kept.
    memo: dict | None = None

    @property
    def pk(self) -> int:
        return self.id

    def card_genres(self) -> list[GenreCard]:
        return self.genres


# How long a process keeps an item's static parts whatever the generation says: a bound
# on staleness for an edit whose new generation could not be written (Redis away).
STATIC_MAX_AGE = 60.0
# Items whose static parts a process keeps at most (then it starts again).
STATIC_MAX_ITEMS = 20_000


class StaticParts:
    """Per process: each item's (title, year, genres), the parts of a card that change
    only when the catalogue is edited, kept under the catalogue generation they were
    read in (an opaque token from the caller: ``recommendations.store``'s, which every
    catalogue edit changes). A card's live parts (active, rating count and sum) are
    never kept: they change with every rating."""

    def __init__(self) -> None:
        self.generation: object = None
        self.since = 0.0
        # item id: (title, year, genres, memo): ``ItemCard.memo``'s dict, made with them
        self.parts: dict[int, tuple[str, int | None, tuple[GenreCard, ...], dict]] = {}

    def under(self, generation, now: float) -> dict:
        """The parts kept under ``generation``, emptied when it is another or too old."""
        if (
            generation != self.generation
            or now - self.since > STATIC_MAX_AGE
            or len(self.parts) > STATIC_MAX_ITEMS
        ):
            self.parts = {}
            self.generation, self.since = generation, now
        return self.parts


static_parts = StaticParts()
