from io import StringIO

import numpy as np
import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from catalog import demo_data
from catalog.models import Item, Rating


def test_the_demo_catalogue_is_deterministic_and_long_tailed():
    first = demo_data.build(n_items=300, n_users=120, seed=3)
    second = demo_data.build(n_items=300, n_users=120, seed=3)
    assert [i.title for i in first.items] == [i.title for i in second.items]
    assert np.array_equal(first.rating_score, second.rating_score)
    assert len({i.title for i in first.items}) == 300
    counts = np.bincount(first.rating_item, minlength=300)
    # A few items draw many ratings, most draw few.
    assert counts.max() > 4 * np.median(counts)
    assert set(np.unique(first.rating_score)) <= {s / 2 for s in range(1, 11)}
    per_user = np.bincount(first.rating_user)
    assert per_user.min() >= 15


def test_users_rate_the_genres_of_their_taste_higher():
    catalogue = demo_data.build(n_items=400, n_users=200, seed=5)
    loved, other = [], []
    for u, i, s in zip(
        catalogue.rating_user, catalogue.rating_item, catalogue.rating_score, strict=True
    ):
        taste = demo_data.TASTES[catalogue.user_taste[u]]
        (loved if catalogue.items[i].genres[0] in taste else other).append(s)
    assert np.mean(loved) > np.mean(other) + 0.5


@pytest.mark.django_db
def test_seed_demo_fills_an_empty_database_once_and_prints_the_logins():
    out = StringIO()
    call_command("seed_demo", "--items", "60", "--users", "40", verbosity=0, stdout=out)
    text = out.getvalue()
    assert "Demo login:  demo /" in text
    password = text.split("Demo login:  demo / ")[1].split()[0]
    assert authenticate(username="demo", password=password) is not None
    assert get_user_model().objects.get(username="admin").is_superuser
    assert Item.objects.count() == 60
    assert Rating.objects.filter(user__username="demo").count() >= 5
    first = Item.objects.order_by("-rating_count").first()
    assert first.rating_count == Rating.objects.filter(item=first).count()
    again = StringIO()
    call_command("seed_demo", "--if-empty", verbosity=0, stdout=again)
    assert "not seeding" in again.getvalue()
    with pytest.raises(CommandError, match="already has items"):
        call_command("seed_demo", verbosity=0, stdout=StringIO())


@pytest.mark.django_db
def test_seed_demo_queues_no_model_updates(redis_client, django_capture_on_commit_callbacks):
    """The seed writes every rating in bulk, the demo login's too: nothing reaches Redis
    (under ``make run`` it is not up yet) and no per-rating update is queued; the first full
    recompute covers them all."""
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", "--items", "60", "--users", "40", verbosity=0, stdout=StringIO())
    demo = get_user_model().objects.get(username="demo")
    scores = sorted(Rating.objects.filter(user=demo).values_list("score", flat=True))
    assert len(scores) >= 5 and set(scores) <= {2.0, 4.5, 5.0}
    assert 5.0 in scores
    rated = Item.objects.filter(ratings__user=demo).first()
    assert rated.rating_count == Rating.objects.filter(item=rated).count()
    assert redis_client.keys("*") == []
