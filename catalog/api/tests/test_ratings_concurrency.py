"""Simultaneous PUTs of one user's first rating of one item: one 201, the rest 200 (item 6).

Real concurrency: threads, each with its own database connection, released together by a
barrier, against the test database (SQLite file or PostgreSQL).
"""

import threading

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from catalog.models import Item, Rating
from catalog.tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 12


def _put_all_at_once(path: str, token: str, scores: list[float]) -> list[int]:
    barrier = threading.Barrier(len(scores))
    statuses: list[int] = [0] * len(scores)

    def put(n: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            barrier.wait(timeout=30)
            statuses[n] = client.put(path, {"score": scores[n]}, format="json").status_code
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=put, args=(n,)) for n in range(len(scores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses


def test_concurrent_first_puts_create_once_and_replace_the_rest():
    user, item = UserFactory(), ItemFactory()
    token = Token.objects.create(user=user).key
    scores = [0.5 * (1 + n % 10) for n in range(THREADS)]
    statuses = _put_all_at_once(f"/api/v1/me/ratings/{item.pk}/", token, scores)
    assert sorted(statuses) == [200] * (THREADS - 1) + [201]
    rating = Rating.objects.get(user=user, item=item)
    item = Item.objects.get(pk=item.pk)
    assert (item.rating_count, item.rating_sum) == (1, rating.score)
