"""The bulk import's staging and merge: the same result as a row-by-row reference, nothing
merged on a bad line, a cut-short merge completed by running the import again, and the
site's own writes going on while an import stages and merges."""

import random
import threading
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from catalog.importers import loader
from catalog.importers.formats import open_source
from catalog.models import Item, Rating
from catalog.services import rating_upsert


@pytest.fixture
def small_chunks(monkeypatch):
    """Merge a handful of lines per transaction, so pairs rated twice straddle chunks."""
    monkeypatch.setattr(loader, "MERGE_FIRST", 7)
    monkeypatch.setattr(loader, "MERGE_MIN", 7)
    monkeypatch.setattr(loader, "MERGE_MAX", 7)


def _write_file(path, lines):
    path.write_text("user,item,rating,timestamp\n" + "".join(f"{line}\n" for line in lines))
    return path


def _random_lines(seed, n, *, users=12, items=9, ts_range=(1000, 1100)):
    """Lines with many repeated pairs, equal timestamps (ties) and a few without any."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        user, item = rng.randrange(users), rng.randrange(items)
        score = rng.randrange(1, 11) / 2
        stamp = "" if rng.random() < 0.05 else rng.randrange(*ts_range)
        lines.append(f"{user},{item},{score:g},{stamp}")
    return lines


class Reference:
    """The importer's rules applied line by line in Python: the oracle for the fast path.

    A line without a time counts as the import's start, which the test knows only as a
    lower bound (``started``, taken just before that import)."""

    def __init__(self):
        self.ratings: dict[tuple[str, str], tuple[float, datetime, datetime]] = {}
        self.starts: set[datetime] = set()

    def apply(self, path, started, namespace="csv"):
        self.starts.add(started)
        for record in open_source(path).ratings():
            key = (f"{namespace}-{record.user}", f"{namespace}:{record.item}")
            when = record.timestamp or started
            stored = self.ratings.get(key)
            if stored is None:
                self.ratings[key] = (record.score, when, when)
            elif when >= stored[2]:
                self.ratings[key] = (record.score, stored[1], when)

    def check(self):
        """The database holds exactly the reference's ratings, users, items and item stats."""
        rows = {
            (r.user.username, r.item.external_id): (r.score, r.created, r.updated)
            for r in Rating.objects.select_related("user", "item")
        }
        assert rows.keys() == self.ratings.keys()
        for key, (score, created, updated) in self.ratings.items():
            got_score, got_created, got_updated = rows[key]
            assert got_score == score, key
            for want, got in ((created, got_created), (updated, got_updated)):
                if want in self.starts:
                    later = [start for start in self.starts if start > want]
                    assert want <= got < min(later, default=datetime.max.replace(tzinfo=UTC))
                else:
                    assert got == want, key
        assert set(get_user_model().objects.values_list("username", flat=True)) == {
            user for user, _ in self.ratings
        }
        items = Item.objects.all()
        stats = {item.external_id: (item.rating_count, item.rating_sum) for item in items}
        expected = {}
        for (_, item), (score, _, _) in self.ratings.items():
            count, total = expected.get(item, (0, 0.0))
            expected[item] = (count + 1, total + score)
        assert stats == expected


def _import(path, *args):
    call_command("import_ratings", str(path), *args, verbosity=0, stdout=StringIO())


@pytest.mark.django_db
def test_the_staged_merge_equals_a_line_by_line_reference_across_reimports(tmp_path, small_chunks):
    """Duplicates within a file and across chunks, ties, lines without a time, then
    re-imports with older and newer times and new users and items."""
    reference, started = Reference(), timezone.now()
    first = _write_file(tmp_path / "a.csv", _random_lines(1, 300))
    _import(first)
    reference.apply(first, started)
    reference.check()
    # older than everything stored (nothing changes but new pairs), then newer, then mixed
    for n, ts_range in enumerate([(500, 600), (2000, 2100), (900, 2500)]):
        path = _write_file(
            tmp_path / f"b{n}.csv",
            _random_lines(10 + n, 200, users=15, items=11, ts_range=ts_range),
        )
        started = timezone.now()
        _import(path)
        reference.apply(path, started)
        reference.check()


@pytest.mark.django_db
def test_a_bad_line_at_the_end_merges_nothing_of_the_file(tmp_path, small_chunks):
    _import(_write_file(tmp_path / "a.csv", _random_lines(2, 100)))

    def state():
        return (
            sorted(Rating.objects.values_list("user_id", "item_id", "score", "updated")),
            sorted(get_user_model().objects.values_list("pk", "username")),
            sorted(Item.objects.values_list("pk", "external_id", "rating_count", "rating_sum")),
        )

    before = state()
    lines = _random_lines(3, 200, users=30, items=20, ts_range=(3000, 4000))
    bad = _write_file(tmp_path / "b.csv", [*lines, "7,7,6,5000"])
    with pytest.raises(CommandError, match=r"b\.csv, line 202: score 6 is out of range"):
        _import(bad)
    assert state() == before


@pytest.mark.django_db
def test_running_the_same_import_again_completes_a_merge_cut_short(tmp_path, small_chunks):
    reference = Reference()
    lines = _random_lines(4, 120)
    path = _write_file(tmp_path / "a.csv", lines)

    class Crash(Exception):
        pass

    def crash_after_two(done, total):
        if done >= 14:
            raise Crash

    started = timezone.now()
    with pytest.raises(Crash):
        loader.import_ratings(open_source(path), namespace="csv", merge_progress=crash_after_two)
    assert 0 < Rating.objects.count() < len({tuple(line.split(",")[:2]) for line in lines})
    _import(path)
    reference.apply(path, started)
    reference.check()


@pytest.mark.django_db(transaction=True)
def test_the_site_can_rate_while_an_import_stages_and_merges(tmp_path, small_chunks):
    """A rating saved through the site from another connection, during staging and between
    merge transactions, goes through at once (no "database is locked") and is kept."""
    user = get_user_model().objects.create(username="csv-0")
    items = [Item.objects.create(title=f"t{n}", external_id=f"csv:{n}") for n in range(3)]
    path = _write_file(tmp_path / "a.csv", _random_lines(5, 150, users=5, items=3))
    outcomes = []

    def site_rates(item, score):
        def run():
            try:
                rating_upsert(user=user, item=item, score=score)
                outcomes.append("ok")
            except Exception as error:  # noqa: BLE001 - the test reports what it was
                outcomes.append(repr(error))
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()

    def during_staging(_bytes):
        if not outcomes:
            site_rates(items[0], 1.0)

    def during_merge(done, total):
        if len(outcomes) == 1:
            site_rates(items[1], 0.5)

    loader.import_ratings(
        open_source(path), namespace="csv", progress=during_staging, merge_progress=during_merge
    )
    assert outcomes == ["ok", "ok"]
    # The site's ratings are newer than the file's times, so the merge keeps them.
    assert Rating.objects.get(user=user, item=items[0]).score == 1.0
    assert Rating.objects.get(user=user, item=items[1]).score == 0.5
    for item in Item.objects.all():
        ratings = list(Rating.objects.filter(item=item).values_list("score", flat=True))
        assert (item.rating_count, item.rating_sum) == (len(ratings), sum(ratings))
