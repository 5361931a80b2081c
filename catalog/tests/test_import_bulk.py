"""The bulk import's staging and merge: the same result as a row-by-row reference, nothing
merged on a bad line, a cut-short merge completed by running the import again, and the
site's own writes going on while an import stages and merges."""

import random
import struct
import threading
import time
from datetime import UTC, datetime
from io import StringIO

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from catalog.importers import loader
from catalog.importers.formats import open_source
from catalog.models import Item, Rating
from catalog.services import rating_delete, rating_upsert


@pytest.fixture
def small_chunks(monkeypatch):
    """Merge a handful of pairs per transaction in blocks of a few users' pairs; PostgreSQL's
    binary COPY sends a handful of rows at a time."""
    monkeypatch.setattr(loader, "SQLITE_BLOCK_PAIRS", 20)
    monkeypatch.setattr(loader, "COPY_BLOCK_ROWS", 7)
    monkeypatch.setattr(loader, "MERGE_FIRST", 7)
    monkeypatch.setattr(loader, "MERGE_MIN", 7)
    monkeypatch.setattr(loader, "MERGE_MAX", 7)
    monkeypatch.setattr(loader, "SQLITE_APPEND_GAP", 0.0)  # (a sleep per batch otherwise)


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
@pytest.mark.parametrize(
    ("swap", "mode"),
    [("always", "auto"), ("never", "auto"), ("never", "offline"), ("never", "online")],
)
def test_the_staged_merge_equals_a_line_by_line_reference_across_reimports(
    tmp_path, small_chunks, monkeypatch, swap, mode
):
    """Duplicates within a file and across chunks, ties, lines without a time, then
    re-imports with older and newer times and new users and items; on PostgreSQL both by
    rebuilding and swapping the table and by upserting in place; on SQLite by a bulk
    first load then online merges, by bulk loads only (``--offline``) and by online
    merges only (``--online``)."""
    if mode != "auto" and connection.vendor != "sqlite":
        pytest.skip("the modes are SQLite's")
    monkeypatch.setattr(loader, "PG_SWAP_ABOVE_FRACTION", 10**9 if swap == "always" else 0)
    monkeypatch.setattr(loader, "SQLITE_BULK_ROWS", 7)
    flags = [] if mode == "auto" else [f"--{mode}"]
    reference, started = Reference(), timezone.now()
    first = _write_file(tmp_path / "a.csv", _random_lines(1, 300))
    _import(first, *flags)
    reference.apply(first, started)
    reference.check()
    # older than everything stored (nothing changes but new pairs), then newer, then mixed
    for n, ts_range in enumerate([(500, 600), (2000, 2100), (900, 2500)]):
        path = _write_file(
            tmp_path / f"b{n}.csv",
            _random_lines(10 + n, 200, users=15, items=11, ts_range=ts_range),
        )
        started = timezone.now()
        _import(path, *flags)
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


class Crash(Exception):
    pass


def _as_the_site(action, outcomes):
    """Run ``action`` on another connection (a thread) while the import waits, and note
    "ok" or the error it raised."""

    def run():
        try:
            action()
            outcomes.append("ok")
        except Exception as error:  # noqa: BLE001 - the test reports what it was
            outcomes.append(repr(error))
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def _phases():
    """Where an import can die: the end of each phase before the last (SQLite merges in
    place, PostgreSQL builds a new table and swaps it in)."""
    if connection.vendor == "postgresql":
        return [
            "read", "items and users", "stage", "build", "constraints", "indexes",
            "item stats ahead", "swap", "item stats",
        ]  # fmt: skip
    return ["read", "items and users", "merge"]


@pytest.mark.django_db
@pytest.mark.parametrize("phase", range(8))
def test_running_the_same_import_again_completes_an_import_cut_short(tmp_path, phase):
    """Killed after any phase, the same import run again gives the full result; before
    PostgreSQL's swap the live ratings are untouched."""
    phases = _phases()
    if phase >= len(phases):
        pytest.skip(f"{connection.vendor} has {len(phases)} phases")
    reference = Reference()
    first = _write_file(tmp_path / "a.csv", _random_lines(6, 200))
    started = timezone.now()
    _import(first)
    reference.apply(first, started)
    before = sorted(Rating.objects.values_list("id", "user_id", "item_id", "score", "updated"))
    path = _write_file(
        tmp_path / "b.csv", _random_lines(4, 300, users=20, items=15, ts_range=(900, 2500))
    )

    def crash(name):
        if name == phases[phase]:
            raise Crash

    started = timezone.now()
    with pytest.raises(Crash):
        loader.import_ratings(open_source(path), namespace="csv", on_phase=crash)
    after = sorted(Rating.objects.values_list("id", "user_id", "item_id", "score", "updated"))
    if phases.index("swap" if "swap" in phases else "merge") > phase:
        assert after == before
    _import(path)
    reference.apply(path, started)
    reference.check()


@pytest.mark.django_db
def test_running_the_same_import_again_completes_a_merge_cut_short(
    tmp_path, small_chunks, monkeypatch
):
    """Merged in place in short transactions (SQLite online; PostgreSQL for a file small
    beside the table): killed between two, part of the file is in, and a rerun completes
    it."""
    monkeypatch.setattr(loader, "PG_SWAP_ABOVE_FRACTION", 0)
    reference = Reference()
    lines = _random_lines(4, 120)
    path = _write_file(tmp_path / "a.csv", lines)

    def crash_after_two(done, total):
        if done >= 14:
            raise Crash

    started = timezone.now()
    with pytest.raises(Crash):
        loader.import_ratings(
            open_source(path), namespace="csv", merge_progress=crash_after_two, mode="online"
        )
    assert 0 < Rating.objects.count() < len({tuple(line.split(",")[:2]) for line in lines})
    _import(path)
    reference.apply(path, started)
    reference.check()


def _stats_off():
    """The items whose stats differ from what their ratings add up to."""
    return [
        item.pk
        for item in Item.objects.all()
        if (item.rating_count, item.rating_sum)
        != (item.ratings.count(), sum(item.ratings.values_list("score", flat=True)))
    ]


@pytest.mark.django_db(transaction=True)
def test_postgresql_lowers_item_stats_after_the_swap_a_crash_between_completed_by_a_rerun(
    tmp_path, monkeypatch
):
    """A re-import that lowers scores: what lowers the items' stats moves after the swap,
    in short transactions (each taking the swap's lock on no table). Killed after two of
    them, with the site rating meanwhile: the ratings are all in, some items' stats are
    off, and the same import run again brings every item's stats to its ratings."""
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL swaps the table")
    monkeypatch.setattr(loader, "STATS_FIRST", 2)
    monkeypatch.setattr(loader, "MERGE_MIN", 2)
    monkeypatch.setattr(loader, "MERGE_MAX", 2)
    site_user = get_user_model().objects.create(username="site-1")
    everything = [f"{u},{i},5,500" for u in range(15) for i in range(12)]  # older, all 5
    _import(_write_file(tmp_path / "b.csv", everything))
    path = _write_file(tmp_path / "a.csv", _random_lines(8, 300, users=15, items=12))
    batches, outcomes, swapped = [], [], []
    apply_batch = loader._SwapMerge.apply_stats_batch

    def batch_then_crash(self, start, stop):
        if "swap" in swapped and len(batches) == 2:
            raise Crash
        apply_batch(self, start, stop)
        if "swap" not in swapped:
            return
        batches.append((start, stop))
        # The site rates an item whose stats have moved (the first, in item order) and one
        # whose stats have not (the last).
        items = Item.objects.filter(external_id__startswith="csv:").order_by("pk")
        item = (items.first(), items.last())[len(batches) - 1]
        _as_the_site(lambda: rating_upsert(user=site_user, item=item, score=4.5), outcomes)

    monkeypatch.setattr(loader._SwapMerge, "apply_stats_batch", batch_then_crash)
    with pytest.raises(Crash):
        loader.import_ratings(
            open_source(path),
            namespace="csv",
            on_phase=swapped.append,
        )
    assert len(batches) == 2 and set(outcomes) == {"ok"}
    assert _stats_off()  # the crash left some items' stats off their ratings
    monkeypatch.setattr(loader._SwapMerge, "apply_stats_batch", apply_batch)
    _import(path)
    assert _stats_off() == []
    assert Rating.objects.filter(user=site_user).count() == 2


@pytest.mark.django_db(transaction=True)
def test_postgresql_raises_item_stats_before_the_swap_so_site_removals_never_fail(tmp_path):
    """A first import: the items' stats rise before the swap (ahead of the live, still
    empty table), so right after the swap, before anything else moves, the site can remove
    and lower imported ratings (their items' counts and sums never go below zero: the
    table's CHECK); in the end every item's stats are what its ratings add up to."""
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL swaps the table")
    path = _write_file(tmp_path / "a.csv", _random_lines(3, 200, users=6, items=4))
    outcomes, ahead = [], []

    def after(name):
        if name == "item stats ahead":
            ahead.append(list(Item.objects.values_list("rating_count", flat=True)))
        if name != "swap":
            return
        for rating in Rating.objects.select_related("user", "item").order_by("pk")[:2]:
            _as_the_site(lambda r=rating: rating_delete(user=r.user, item=r.item), outcomes)
        rating = Rating.objects.select_related("user", "item").order_by("-pk").first()
        _as_the_site(lambda: rating_upsert(user=rating.user, item=rating.item, score=0.5), outcomes)

    loader.import_ratings(open_source(path), namespace="csv", on_phase=after)
    assert outcomes == ["ok", "ok", "ok"]
    assert ahead and all(count > 0 for count in ahead[0])
    assert _stats_off() == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("start_empty", [False, True])
def test_site_writes_during_every_phase_go_through_at_once_and_are_kept(tmp_path, start_empty):
    """Ratings the site adds, changes and removes from another connection at the end of
    each phase go through at once (the import holds no lock there: a held one would make
    the write wait for the lock timeout and fail) and survive the merge or the swap,
    being newer than the file's; ids stay unique, the id sequence goes on after them all
    and the item stats match the ratings. ``start_empty``: no rating exists when the
    import starts (PostgreSQL then copies the file straight into the new table)."""
    users = [get_user_model().objects.create(username=f"csv-{n}") for n in range(3)]
    outsider = get_user_model().objects.create(username="csv-99")  # not in the file
    items = [Item.objects.create(title=f"t{n}", external_id=f"csv:{n}") for n in range(4)]
    path = _write_file(tmp_path / "a.csv", _random_lines(7, 200, users=3, items=4))
    outcomes, expected, gone = [], {}, set()

    def in_thread(action):
        _as_the_site(action, outcomes)

    def outsider_rates():
        for item in items:
            rating_upsert(user=outsider, item=item, score=2.0)

    if not start_empty:
        outsider_rates()
    # PostgreSQL looks whether the table is empty after these phases.
    early = ("read", "items and users") if connection.vendor == "postgresql" else ()

    def after_phase(name):
        if start_empty and name in early:
            return
        if start_empty and not outcomes:
            in_thread(outsider_rates)
        n = len(outcomes)
        user, item, score = users[n % 3], items[n % 4], 0.5 + (n % 10) / 2
        in_thread(lambda: rating_upsert(user=user, item=item, score=score))
        expected[(user.pk, item.pk)] = score
        if n // 2 < len(items):  # and remove one of the outsider's ratings
            in_thread(lambda: rating_delete(user=outsider, item=items[n // 2]))
            gone.add((outsider.pk, items[n // 2].pk))

    loader.import_ratings(open_source(path), namespace="csv", on_phase=after_phase)
    assert len(outcomes) >= 4 and set(outcomes) == {"ok"}
    got = {(r.user_id, r.item_id): r.score for r in Rating.objects.all()}
    assert {pair: got.get(pair) for pair in expected} == expected
    assert not gone & got.keys()
    assert {(outsider.pk, item.pk) for item in items} - gone <= got.keys()
    ids = list(Rating.objects.values_list("id", flat=True))
    assert len(ids) == len(set(ids))
    for item in Item.objects.all():
        ratings = list(Rating.objects.filter(item=item).values_list("score", flat=True))
        assert (item.rating_count, item.rating_sum) == (len(ratings), sum(ratings))
    assert rating_upsert(user=outsider, item=items[0], score=1.0).pk > max(ids)


@pytest.mark.django_db(transaction=True)
def test_the_site_can_rate_while_an_import_stages_and_merges(tmp_path, small_chunks):
    """A rating saved through the site from another connection, during staging and between
    merge transactions, goes through at once (no "database is locked") and is kept."""
    user = get_user_model().objects.create(username="csv-0")
    items = [Item.objects.create(title=f"t{n}", external_id=f"csv:{n}") for n in range(3)]
    path = _write_file(tmp_path / "a.csv", _random_lines(5, 150, users=5, items=3))
    outcomes = []

    def site_rates(item, score):
        _as_the_site(lambda: rating_upsert(user=user, item=item, score=score), outcomes)

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


def _schema():
    """The ratings table's columns, indexes, constraints and id sequence, as PostgreSQL
    describes them."""
    table = Rating._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type, is_nullable, is_identity FROM "
            "information_schema.columns WHERE table_name = %s ORDER BY column_name",
            [table],
        )
        columns = cursor.fetchall()
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        indexes = sorted(cursor.fetchall())
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
            "WHERE conrelid = %s::regclass",
            [table],
        )
        constraints = sorted(cursor.fetchall())
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        sequence = cursor.fetchone()[0]
    return columns, indexes, constraints, sequence


@pytest.mark.django_db(transaction=True)
def test_the_swapped_in_table_has_the_live_tables_schema(tmp_path):
    """Same columns, index and constraint names and definitions (so Django's migrations
    still find them), foreign keys validated, and the id sequence under its own name; the
    indexes built by several connections at once (outside a test's transaction)."""
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL swaps the table")
    assert loader.PG_BUILD_CONNECTIONS > 1
    before = _schema()
    _import(_write_file(tmp_path / "a.csv", _random_lines(8, 100)))
    assert _schema() == before
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'imp\\_%%'")
        assert cursor.fetchone()[0] == 0  # nothing of the import is left behind
        cursor.execute("SELECT count(*) FROM pg_proc WHERE proname LIKE 'imp\\_%%'")
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db(transaction=True)
def test_the_swap_gives_way_to_a_site_write_in_progress_and_tries_again(tmp_path, monkeypatch):
    """A site transaction holding the live table when the swap comes makes the swap time
    out (so writes queued behind it never wait long) and try again; the write is kept."""
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL swaps the table")
    monkeypatch.setattr(loader, "SWAP_LOCK_SECONDS", 0.2)
    user = get_user_model().objects.create(username="csv-0")
    item = Item.objects.create(title="t", external_id="csv:0")
    path = _write_file(tmp_path / "a.csv", _random_lines(9, 50, users=3, items=3))
    holding, release, attempts = threading.Event(), threading.Event(), []

    def site_transaction():
        try:
            with transaction.atomic():
                rating_upsert(user=user, item=item, score=0.5)
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    swap = loader._SwapMerge.swap

    def counted_swap(self, renames):
        attempts.append(1)
        try:
            return swap(self, renames)
        finally:
            release.set()  # the site's transaction ends after the first attempt

    monkeypatch.setattr(loader._SwapMerge, "swap", counted_swap)
    thread = threading.Thread(target=site_transaction)

    def before_swap(name):
        if name == "item stats ahead":
            thread.start()
            holding.wait(30)

    loader.import_ratings(open_source(path), namespace="csv", on_phase=before_swap)
    thread.join()
    assert len(attempts) >= 2
    assert Rating.objects.get(user=user, item=item).score == 0.5


@pytest.mark.django_db
def test_the_index_build_has_more_sort_memory_and_the_session_gets_its_own_back(
    tmp_path, monkeypatch
):
    """PostgreSQL builds the new table's indexes with ``PG_BUILD_SETTINGS`` (sorts that
    would spill to disk at the server's defaults), then the session's values are back."""
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL builds a new table")

    def settings():
        with connection.cursor() as cursor:
            return {
                name: cursor.execute(f"SHOW {name}").fetchone()[0]
                for name in loader.PG_BUILD_SETTINGS
            }

    before, seen = settings(), []
    build = loader._SwapMerge.build_indexes

    def watched(self, **options):
        seen.append(settings())
        return build(self, **options)

    monkeypatch.setattr(loader._SwapMerge, "build_indexes", watched)
    _import(_write_file(tmp_path / "a.csv", _random_lines(8, 100)))
    assert seen == [loader.PG_BUILD_SETTINGS]
    assert settings() == before != loader.PG_BUILD_SETTINGS


@pytest.mark.django_db(transaction=True)
def test_the_index_builds_share_out_over_connections_with_the_build_settings():
    """Each statement runs once, on one of ``connections`` other sessions at once, each with
    ``PG_BUILD_SETTINGS``; this session's settings are untouched; a failing statement is
    raised here after the others have stopped."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's index builds")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE imp_test_seen (n int, pid int, mem text, at timestamptz)")
        cursor.execute("SELECT pg_backend_pid(), current_setting('maintenance_work_mem')")
        own_pid, own_mem = cursor.fetchone()
    statements = [
        f"INSERT INTO imp_test_seen SELECT {n}, pg_backend_pid(), "
        "current_setting('maintenance_work_mem'), clock_timestamp() FROM pg_sleep(0.5)"
        for n in range(4)
    ]
    try:
        loader._pg_run_in_parallel(statements, 2)
        with connection.cursor() as cursor:
            cursor.execute("SELECT n, pid, mem FROM imp_test_seen ORDER BY n")
            seen = cursor.fetchall()
            cursor.execute("SELECT current_setting('maintenance_work_mem')")
            assert cursor.fetchone()[0] == own_mem
        assert [n for n, _, _ in seen] == [0, 1, 2, 3]
        pids = {pid for _, pid, _ in seen}
        assert len(pids) == 2 and own_pid not in pids
        assert {mem for _, _, mem in seen} == {loader.PG_BUILD_SETTINGS["maintenance_work_mem"]}
        with pytest.raises(Exception, match="imp_test_missing"):
            loader._pg_run_in_parallel(["SELECT * FROM imp_test_missing", *statements], 2)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE imp_test_seen")


# --- SQLite's bulk load (an empty ratings table, or --offline) -----------------------------


def _sqlite_schema():
    """The ratings table's definition and its indexes, as SQLite stores them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = %s ORDER BY name",
            [Rating._meta.db_table],
        )
        return cursor.fetchall()


def _sqlite_only():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's bulk load")


@pytest.mark.django_db
def test_a_bad_line_in_a_first_import_creates_nothing(tmp_path):
    """Into an empty database (the bulk load's case) too, a bad line names itself and
    nothing of the file is written: no rating, user or item."""
    bad = _write_file(tmp_path / "b.csv", [*_random_lines(3, 50), "7,7,4,x"])
    with pytest.raises(CommandError, match=r"b\.csv, line 52"):
        _import(bad)
    assert not Rating.objects.exists()
    assert not get_user_model().objects.exists()
    assert not Item.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("offline", [False, True])
def test_the_append_keeps_every_index_up_and_the_offline_load_builds_them_after_the_rows(
    tmp_path, monkeypatch, small_chunks, offline
):
    """An empty ratings table is appended to with every index kept up: all of them lead
    with the user (the unique (user, item) one and (user, -updated)), as the rows' order
    does, so none is dropped or built again after. ``offline``, a table that holds ratings
    is loaded with every index of its own dropped (only the unique one of its definition
    kept up) and built again after, under its name. Either way the schema is as it was,
    and a second, smaller import into the table that now holds ratings keeps every index
    up."""
    _sqlite_only()
    monkeypatch.setattr(loader, "SQLITE_BULK_ROWS", 20)
    if offline:
        _import(_write_file(tmp_path / "0.csv", _random_lines(1, 60)), "--online")
    before = _sqlite_schema()
    assert [name for kind, name, sql in before if kind == "index" and sql] == [
        "rating_user_recent_idx"
    ]
    during = []

    def look(done, total):
        during.append([name for kind, name, sql in _sqlite_schema() if kind == "index"])

    path = _write_file(tmp_path / "a.csv", _random_lines(2, 200, users=20, items=15))
    loader.import_ratings(
        open_source(path),
        namespace="csv",
        merge_progress=look,
        mode="auto" if not offline else "offline",
    )
    every = ["rating_user_recent_idx", "sqlite_autoindex_catalog_rating_1"]
    kept_up = every[1:] if offline else every  # offline: the unique one only
    assert len(during) > 2 and all(sorted(names) == kept_up for names in during)
    assert _sqlite_schema() == before
    during.clear()
    _import(_write_file(tmp_path / "b.csv", _random_lines(3, 50, ts_range=(3000, 4000))))
    loader.import_ratings(
        open_source(tmp_path / "b.csv"), namespace="csv", merge_progress=look, mode="online"
    )
    assert during and all(sorted(names) == every for names in during)  # online: all kept up


@pytest.mark.django_db(transaction=True)
def test_the_append_holds_no_transaction_longer_than_one_batch(tmp_path, small_chunks, monkeypatch):
    """SQLite's append (a first import) writes the ratings in one short transaction per
    batch of users and nothing else: no index dropped or built (a ``CREATE INDEX`` after
    the rows was one transaction that held the site's writes for its whole build: ~10 s
    at 10M ratings, past the 20 s busy timeout at 25M), no statement on the ratings table
    outside a batch; and between two batches the write lock is left free at least
    ``SQLITE_APPEND_GAP`` (a site write sleeping in SQLite's busy handler slept through
    shorter gaps). Every statement the import's connection runs from the end of "items
    and users" is traced (with when it started) and split into transactions."""
    _sqlite_only()
    monkeypatch.setattr(loader, "SQLITE_APPEND_GAP", 0.03)
    statements, batches = [], []
    connection.ensure_connection()
    raw = connection.connection  # the import's connection (the test's own)

    def on_phase(name):
        if name == "items and users":
            raw.set_trace_callback(lambda sql: statements.append((time.perf_counter(), sql)))

    def on_batch(done, total):
        batches.append(done)
        assert not raw.in_transaction  # each batch committed before the next starts

    path = _write_file(tmp_path / "a.csv", _random_lines(2, 300, users=30, items=15))
    try:
        loader.import_ratings(
            open_source(path), namespace="csv", on_phase=on_phase, merge_progress=on_batch
        )
    finally:
        raw.set_trace_callback(None)
    transactions, current, gaps, committed = [], None, [], None
    for at, sql in statements:
        head = sql.lstrip().upper()
        if head.startswith("BEGIN"):
            current = []
            if committed is not None:
                gaps.append(at - committed)
        elif head.startswith(("COMMIT", "ROLLBACK")):
            transactions.append(current)
            current, committed = None, at
        elif current is not None:
            current.append(head)
        else:  # outside a transaction: reads (no lock in WAL) and the checkpoints, no write
            assert head.startswith(("PRAGMA", "SELECT")), sql
    assert not any("INDEX" in sql.upper() for _, sql in statements), "no index dropped or built"
    writes = [t for t in transactions if any(h.startswith("INSERT") for h in t)]
    assert len(batches) > 3 and len(writes) == len(transactions) == len(batches)
    rating_table = Rating._meta.db_table.upper()
    for each in writes:
        inserts = [h for h in each if h.startswith("INSERT")]
        # One batch: its rows in one statement or a few of up to SQLITE_ROWS_PER_STATEMENT.
        assert all(h.startswith(f'INSERT INTO "{rating_table}"') for h in inserts)
        # (and the insert's own CHECK setting, SQLITE_INSERT_PRAGMAS, on and off again)
        allowed = ("SELECT", "INSERT", "UPDATE", "PRAGMA IGNORE_CHECK_CONSTRAINTS")
        assert all(h.startswith(allowed) for h in each), each
    assert len(gaps) == len(transactions) - 1 and min(gaps) >= 0.03, gaps


def _import_crashing(path, *, where: str, after_pairs: int, mode: str = "auto") -> None:
    """Import ``path``, killed (``Crash``) at the end of the phase ``where``, or once
    ``after_pairs`` pairs are merged when ``where`` is "a batch"."""

    def crash_at(name):
        if name == where:
            raise Crash

    def crash_after_a_batch(done, total):
        if where == "a batch" and done >= after_pairs:
            raise Crash

    with pytest.raises(Crash):
        loader.import_ratings(
            open_source(path),
            namespace="csv",
            on_phase=crash_at,
            merge_progress=crash_after_a_batch,
            mode=mode,
        )


def _stats_agree():
    """Every item's ``rating_count``/``rating_sum`` is what its ratings add up to."""
    for item in Item.objects.all():
        ratings = list(Rating.objects.filter(item=item).values_list("score", flat=True))
        assert (item.rating_count, item.rating_sum) == (len(ratings), sum(ratings)), item


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["a batch", "merge"])
@pytest.mark.parametrize("rerun", ["auto", "online"])
def test_running_the_same_import_again_completes_an_append_cut_short(
    tmp_path, small_chunks, where, rerun
):
    """SQLite's append (an import large beside the table) commits each range of users with
    their items' stats: killed after a batch or after the rows, the rows in and the stats
    agree, the schema is untouched (nothing was dropped), and the same import run again
    (or any import, here an online one) completes it: every rating as a line-by-line
    reference has it."""
    _sqlite_only()
    before = _sqlite_schema()
    reference = Reference()
    path = _write_file(tmp_path / "a.csv", _random_lines(4, 300, users=30, items=15))
    started = timezone.now()
    _import_crashing(path, where=where, after_pairs=60)
    assert Rating.objects.exists()
    _stats_agree()
    assert _sqlite_schema() == before
    if rerun == "online":
        _import(path, "--online")
    else:
        _import(path)
    reference.apply(path, started)
    reference.check()
    assert _sqlite_schema() == before


@pytest.mark.django_db(transaction=True)
def test_the_migration_drops_the_item_index_and_an_older_appends_list_of_it():
    """Migrating a database an older version's append was cut short in (the item index
    dropped and listed in ``imp_pending_index`` for the next import to build) leaves no
    index by item and no list, so no import builds it again; a database that still has
    the index (any other) loses it. Both databases; the list is SQLite's."""
    table, name = Rating._meta.db_table, "rating_item_recent_idx"

    def indexes():
        with connection.cursor() as cursor:
            found = connection.introspection.get_constraints(cursor, table)
        return sorted(key for key, info in found.items() if info["index"] and not info["unique"])

    def tables():
        with connection.cursor() as cursor:
            return set(connection.introspection.table_names(cursor))

    call_command("migrate", "catalog", "0005", verbosity=0)
    try:
        assert name in indexes()
    finally:
        call_command("migrate", "catalog", verbosity=0)
    assert name not in indexes()
    if connection.vendor != "sqlite":
        return
    call_command("migrate", "catalog", "0005", verbosity=0)
    with connection.cursor() as cursor:  # what an append cut short by an older version left
        cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("CREATE TABLE imp_pending_index (name TEXT PRIMARY KEY, sql TEXT NOT NULL)")
        cursor.execute(
            "INSERT INTO imp_pending_index VALUES (%s, %s)",
            [name, f'CREATE INDEX "{name}" ON "{table}" ("item_id", "updated" DESC)'],
        )
    call_command("migrate", "catalog", verbosity=0)
    assert name not in indexes()
    assert "imp_pending_index" not in tables()


def _wal_frames():
    """(frames in the write-ahead log, frames of it already copied into the database
    file), read from the WAL index (the ``-shm`` file: ``mxFrame`` of its header,
    ``nBackfill`` of its checkpoint information, both native-endian u32)."""
    with open(f"{connection.settings_dict['NAME']}-shm", "rb") as shm:
        head = shm.read(100)
    (max_frame,) = struct.unpack("=I", head[16:20])
    (backfilled,) = struct.unpack("=I", head[96:100])
    return max_frame, backfilled


@pytest.mark.django_db(transaction=True)
def test_each_append_transaction_is_checkpointed_by_the_import_not_the_sites_next_write(
    tmp_path, small_chunks
):
    """After each transaction of SQLite's append (a first import) the import copies its
    pages from the write-ahead log into the database file itself: left there, the site's
    next write (its connection checkpoints past 1,000 pages of log) would copy them after
    its commit, and wait for that (10M ratings: 4 of ~100 writes over 1 s)."""
    _sqlite_only()
    seen = []
    path = _write_file(tmp_path / "a.csv", _random_lines(2, 200, users=20, items=15))
    loader.import_ratings(
        open_source(path),
        namespace="csv",
        merge_progress=lambda done, total: seen.append(_wal_frames()),
    )
    assert len(seen) > 2
    assert all(frames > 0 and backfilled == frames for frames, backfilled in seen), seen


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["a batch", "load", "indexes", "item stats"])
def test_running_the_same_import_again_completes_a_bulk_load_cut_short(
    tmp_path, monkeypatch, where
):
    """The offline load is one transaction: killed after a batch of rows or any of its
    phases, the ratings table is as it was (empty, with all its indexes, no item stats
    moved) and the same import run again loads it all."""
    _sqlite_only()
    monkeypatch.setattr(loader, "SQLITE_BULK_ROWS", 20)
    before = _sqlite_schema()
    path = _write_file(tmp_path / "a.csv", _random_lines(4, 200, users=20, items=15))

    started = timezone.now()
    _import_crashing(path, where=where, after_pairs=40, mode="offline")
    assert not Rating.objects.exists()
    assert _sqlite_schema() == before
    assert set(Item.objects.values_list("rating_count", "rating_sum")) == {(0, 0.0)}
    _import(path, "--offline")
    reference = Reference()
    reference.apply(path, started)
    reference.check()


@pytest.mark.django_db(transaction=True)
def test_the_bulk_load_runs_with_its_pragmas_and_gives_the_connection_its_own_back(tmp_path):
    """During the offline load (its own transaction) the connection has
    ``SQLITE_BULK_PRAGMAS`` (no fsync, a big page cache, sort threads); after it, the
    values it had."""
    _sqlite_only()

    def pragmas():
        with connection.cursor() as cursor:
            return {
                name: cursor.execute(f"PRAGMA {name}").fetchone()[0]
                for name in loader.SQLITE_BULK_PRAGMAS
            }

    want = {"cache_size": -1024 * 1024, "synchronous": 0, "threads": 2, "foreign_keys": 0}
    assert want.keys() == loader.SQLITE_BULK_PRAGMAS.keys()
    before, seen = pragmas(), []
    path = _write_file(tmp_path / "a.csv", _random_lines(5, 50))
    loader.import_ratings(
        open_source(path),
        namespace="csv",
        merge_progress=lambda *_: seen.append(pragmas()),
        mode="offline",
    )
    assert seen and all(each == want for each in seen)
    assert pragmas() == before != want


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["auto", "offline"])
def test_the_loads_without_sqlites_score_check_check_the_scores_themselves(
    tmp_path, monkeypatch, mode
):
    """The append and the offline load insert the rows with SQLite's CHECK constraints off
    on their own connection (the score's IN list cost ~40% of the insert): a score the
    table would refuse, slipped past the reader, stops the load before anything is
    written; between the inserts (where the items' stats move) and after the load the
    connection checks again, and refuses such a score."""
    _sqlite_only()
    newest = loader._Pairs.newest.__func__

    def spoiled(cls, *args):
        pairs = newest(cls, *args)
        pairs.score[len(pairs) // 2] = 4.2
        return pairs

    monkeypatch.setattr(loader._Pairs, "newest", classmethod(spoiled))
    path = _write_file(tmp_path / "a.csv", _random_lines(8, 80))
    with pytest.raises(ValueError, match=r"1 scores not allowed \(first: 4\.2\)"):
        loader.import_ratings(open_source(path), namespace="csv", mode=mode)
    assert not Rating.objects.exists()
    monkeypatch.undo()
    monkeypatch.setattr(loader, "SQLITE_BULK_ROWS", 20)
    monkeypatch.setattr(loader, "SQLITE_APPEND_FIRST", 20)
    monkeypatch.setattr(loader, "MERGE_MIN", 20)
    monkeypatch.setattr(loader, "MERGE_MAX", 20)
    monkeypatch.setattr(loader, "SQLITE_APPEND_GAP", 0.0)

    def ignoring():
        with connection.cursor() as cursor:
            return cursor.execute("PRAGMA ignore_check_constraints").fetchone()[0]

    between = []
    loader.import_ratings(
        open_source(path),
        namespace="csv",
        mode=mode,
        merge_progress=lambda *_: between.append(ignoring()),
    )
    assert Rating.objects.exists()
    assert len(between) > 1 and not any(between) and ignoring() == 0
    with pytest.raises(IntegrityError, match="CHECK"), transaction.atomic():
        Rating.objects.filter(pk=Rating.objects.first().pk).update(score=4.2)


@pytest.mark.django_db(transaction=True)
def test_a_site_write_during_a_bulk_load_waits_for_it_and_is_kept(tmp_path, monkeypatch):
    """A rating the site saves from another connection while the offline load holds the
    database waits for its commit (no "database is locked"), then goes in as the newest
    rating of its pair, with the item's stats in step."""
    _sqlite_only()
    monkeypatch.setattr(loader, "SQLITE_BULK_ROWS", 20)
    user = get_user_model().objects.create(username="csv-0")
    items = [Item.objects.create(title=f"t{n}", external_id=f"csv:{n}") for n in range(3)]
    path = _write_file(tmp_path / "a.csv", _random_lines(6, 150, users=5, items=3))
    outcomes, threads = [], []

    def site_rates(done, total):
        if not threads:
            thread = threading.Thread(
                target=_as_the_site,
                args=(lambda: rating_upsert(user=user, item=items[0], score=0.5), outcomes),
            )
            thread.start()
            threads.append(thread)

    loader.import_ratings(
        open_source(path), namespace="csv", merge_progress=site_rates, mode="offline"
    )
    threads[0].join(30)
    assert outcomes == ["ok"]
    assert Rating.objects.get(user=user, item=items[0]).score == 0.5
    for item in Item.objects.all():
        ratings = list(Rating.objects.filter(item=item).values_list("score", flat=True))
        assert (item.rating_count, item.rating_sum) == (len(ratings), sum(ratings))


@pytest.mark.django_db(transaction=True)
def test_postgresql_copies_a_file_straight_in_beside_a_few_live_ratings(tmp_path, monkeypatch):
    """A few ratings in the live table (the site's, made while the file was read) do not
    send a first import down the staged merge: the pairs are copied straight into the new
    table and the live rows re-applied in the swap, newer wins, stats in step."""
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL copies into a new table")
    monkeypatch.setattr(loader, "SWAP_COPY_LIVE_MAX", 3)
    monkeypatch.setattr(
        loader._SwapMerge, "build_rows", lambda self: pytest.fail("took the staged merge")
    )
    user = get_user_model().objects.create(username="csv-0")
    outsider = get_user_model().objects.create(username="site-1")
    items = [Item.objects.create(title=f"t{n}", external_id=f"csv:{n}") for n in range(3)]
    rating_upsert(user=user, item=items[0], score=0.5)  # newer than the file's lines
    rating_upsert(user=outsider, item=items[1], score=1.5)  # a pair the file lacks
    path = _write_file(tmp_path / "a.csv", _random_lines(5, 150, users=5, items=3))
    started = timezone.now()
    loader.import_ratings(open_source(path), namespace="csv")
    reference = Reference()
    reference.apply(path, started)
    got = {(r.user.username, r.item.external_id): r.score for r in Rating.objects.all()}
    want = {key: score for key, (score, _, _) in reference.ratings.items()}
    want[("csv-0", "csv:0")] = 0.5
    want[("site-1", "csv:1")] = 1.5
    assert got == want
    _stats_agree()


@pytest.mark.django_db(transaction=True)
def test_a_site_write_during_postgresqls_copy_into_an_empty_table_goes_through_at_once(
    tmp_path, small_chunks
):
    """Into an empty ratings table PostgreSQL copies the file straight into the new table;
    the lock that reserves its ids is gone before the copy starts, so a rating the site
    saves meanwhile (another connection) goes in at once and survives the swap."""
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL copies into a new table")
    user = get_user_model().objects.create(username="csv-0")
    items = [Item.objects.create(title=f"t{n}", external_id=f"csv:{n}") for n in range(3)]
    path = _write_file(tmp_path / "a.csv", _random_lines(5, 150, users=5, items=3))
    outcomes = []

    def during_copy(done, total):
        if not outcomes:
            _as_the_site(lambda: _rate_quickly(user, items[0]), outcomes)

    loader.import_ratings(open_source(path), namespace="csv", merge_progress=during_copy)
    assert outcomes == ["ok"]
    assert Rating.objects.get(user=user, item=items[0]).score == 0.5


def _rate_quickly(user, item):
    """The site's rating, giving up after 2 s of waiting for a lock."""
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '2s'")
    rating_upsert(user=user, item=item, score=0.5)


@pytest.mark.django_db
def test_the_bulk_loads_times_are_written_as_django_writes_them():
    """The bulk load formats the times in numpy: the same text Django stores in SQLite,
    from year 1 to 9999 and before 1970, and the import's own time for a line without."""
    _sqlite_only()
    stamps = [-62135596800, -1, 0, 59, 86_399, 86_400, 951_782_400, 253_402_300_799]
    now = timezone.now().replace(microsecond=0)
    now_us = int(now.timestamp()) * 1_000_000
    us = np.array([*stamps, now.timestamp()], np.int64) * 1_000_000
    want = [
        connection.ops.adapt_datetimefield_value(datetime.fromtimestamp(t, UTC)) for t in stamps
    ]
    got = loader._sqlite_datetimes(us, now_us, "now")
    assert got == [*want, "now"]


@pytest.mark.django_db
def test_a_user_deleted_before_the_bulk_load_rolls_it_back_and_a_rerun_completes(tmp_path):
    """The bulk load checks the file's users and items once each instead of a foreign-key
    lookup per row: one deleted after the import made it (the site deleting an account)
    stops the load with nothing of it written, and the same import again loads it all."""
    _sqlite_only()
    path = _write_file(tmp_path / "a.csv", _random_lines(8, 100, users=6, items=5))

    def delete_a_user(name):
        if name == "items and users":
            get_user_model().objects.filter(username="csv-3").delete()

    started = timezone.now()
    with pytest.raises(IntegrityError, match="1 users of the file were deleted"):
        loader.import_ratings(open_source(path), namespace="csv", on_phase=delete_a_user)
    assert not Rating.objects.exists()
    _import(path)
    reference = Reference()
    reference.apply(path, started)
    reference.check()
