"""The catalogue's side information as the engine's :class:`~.engine.data.ItemInfo`.

What content models (TF-IDF similarity, the blend's content parts) read for items that
have no ratings yet: each item's title, year and genre names, keyed by the item's primary
key. Both the recompute (fitting the models) and the pages (a new item's "also liked"
panel before any recompute has seen it) build it here, so they describe items alike.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from catalog.models import Item

from .engine.data import ItemInfo


def catalogue_item_info(*, item_ids=None, active_only: bool = True) -> ItemInfo:
    """Rows for the catalogue's items sorted by primary key (or only ``item_ids``).

    ``tags`` are empty: the catalogue has no free-text tags.
    """
    items = Item.objects.all()
    if active_only:
        items = items.filter(is_active=True)
    if item_ids is not None:
        items = items.filter(pk__in=[int(x) for x in item_ids])
    rows = list(items.order_by("pk").values_list("pk", "title", "year"))
    names = defaultdict(list)
    through = Item.genres.through.objects.filter(item_id__in=[pk for pk, _, _ in rows])
    for item_id, name in through.order_by("genre__name").values_list("item_id", "genre__name"):
        names[item_id].append(name)
    return ItemInfo(
        item_ids=np.fromiter((pk for pk, _, _ in rows), dtype=np.int64, count=len(rows)),
        titles=[title for _, title, _ in rows],
        years=np.array([np.nan if y is None else float(y) for _, _, y in rows], dtype=np.float64),
        genres=[names[pk] for pk, _, _ in rows],
        tags=[[] for _ in rows],
    )
