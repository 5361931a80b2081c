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

    @property
    def pk(self) -> int:
        return self.id

    def card_genres(self) -> list[GenreCard]:
        return self.genres
