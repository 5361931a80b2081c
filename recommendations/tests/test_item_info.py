import numpy as np
import pytest

from catalog.models import Genre, Item
from recommendations.item_info import catalogue_item_info

pytestmark = pytest.mark.django_db


def test_catalogue_item_info_rows_by_primary_key():
    drama = Genre.objects.create(name="Drama", slug="drama")
    scifi = Genre.objects.create(name="Sci-Fi", slug="sci-fi")
    a = Item.objects.create(title="Alpha", year=1999)
    b = Item.objects.create(title="Beta")
    c = Item.objects.create(title="Gamma", year=2001, is_active=False)
    a.genres.set([scifi, drama])
    c.genres.set([drama])

    info = catalogue_item_info()
    assert info.item_ids.tolist() == [a.pk, b.pk]
    assert info.titles == ["Alpha", "Beta"]
    assert info.years[0] == 1999 and np.isnan(info.years[1])
    assert info.genres == [["Drama", "Sci-Fi"], []]
    assert info.tags == [[], []]

    every = catalogue_item_info(active_only=False, item_ids=[c.pk])
    assert every.item_ids.tolist() == [c.pk] and every.genres == [["Drama"]]
