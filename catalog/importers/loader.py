"""Bulk loading of rating files into the catalogue: stage everything, then merge in short steps.

1. **Stage.** The items file is read and checked whole, and every rating line is parsed
   and checked into a temporary staging table of this connection (PostgreSQL: ``COPY``;
   SQLite: ``executemany`` in one transaction of the temporary database, which takes no
   lock on the live tables). A bad line (unless skipped) stops the import here, before
   anything live is written: nothing of the file is merged.
2. **Merge.** Items, then missing users and bare items, then the ratings, then the
   touched items' ``rating_count``/``rating_sum``, each in short transactions sized to
   take about ``MERGE_SECONDS``, so the site's own writes wait at most that long. The
   ratings merge is one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` per chunk: of
   staged lines in file order (SQLite), or of user and item pairs reduced beforehand to
   their newest line (PostgreSQL); a stored rating is replaced only by one at least as new
   (by the file's timestamp; the import's start time where the file has none; the later
   line on a tie), so importing again is idempotent, and running the same import again
   completes a merge a crash cut short.

No ``rating_changed`` signal is sent per rating: the users' stored lists go stale by
their taste stamp, which is read from the database.
"""

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts import usernames
from catalog.importers.formats import BadLine, Format, ItemRecord, RatingRow
from catalog.models import Genre, Item, Rating
from catalog.services import item_stats_refresh
from catalog.signals import catalogue_changed

CHUNK_SIZE = 5000
MAX_REPORTED_SKIPS = 20
# Each merge transaction aims at this long, so a site write waits at most about that.
MERGE_SECONDS = 0.5
# Staged lines (or items, users) in the first merge transaction, and the bounds the
# adaptive size stays within.
MERGE_FIRST, MERGE_MIN, MERGE_MAX = 20_000, 2_000, 500_000

# SQLite's page cache for the importing connection, in KiB (negative: a size, not pages).
SQLITE_CACHE_KIB = -256 * 1024

_ROWS, _USERS, _ITEMS = "imp_stage_ratings", "imp_stage_users", "imp_stage_items"
_PAIRS = "imp_stage_pairs"


@dataclass
class ImportReport:
    format: str
    items_created: int = 0
    users_created: int = 0
    ratings_read: int = 0
    ratings_written: int = 0
    skipped: list[str] = field(default_factory=list)
    skipped_count: int = 0
    # Wall seconds of each phase: stage, items and users, ratings, item stats.
    seconds: dict[str, float] = field(default_factory=dict)

    def skip(self, error: BadLine) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_REPORTED_SKIPS:
            self.skipped.append(str(error))


def import_ratings(
    source: Format,
    *,
    namespace: str,
    skip_invalid: bool = False,
    progress: Callable[[int], None] | None = None,
    merge_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import ``source`` into the database; raise ``BadLine`` (nothing merged) on a bad line.

    ``progress`` is called with the bytes of the ratings file read since its last call;
    ``merge_progress`` with (units merged so far, units in all) after each merge
    transaction of the ratings: staged lines on SQLite, distinct pairs on PostgreSQL.
    """
    report = ImportReport(format=source.name)
    item_records = list(source.items())  # checked whole before anything is written
    stage = _Stage()
    clock = _Clock(report.seconds)
    try:
        stage.create()
        users, items = stage.fill(source.rating_rows(progress), report, skip_invalid)
        now = timezone.now()
        clock.lap("stage")
        # Every new user's name obeys the site's username rule, checked before anything
        # is written, so a bad id merges nothing (accounts.usernames).
        for ext in users:
            usernames.validate_generated(f"{namespace}-{ext}")

        item_writer = _ItemWriter(namespace)
        item_writer.write(item_records)
        report.items_created = item_writer.created + item_writer.create_bare(items)
        catalogue_changed.send(sender=Item)  # bulk writes send no model signals
        user_pks = _user_map(namespace)
        report.users_created = import_users_create(
            prefix=f"{namespace}-", external_ids=[ext for ext in users if ext not in user_pks]
        )
        if report.users_created:
            user_pks = _user_map(namespace)
        stage.fill_map(_USERS, ((idx, user_pks[ext]) for ext, idx in users.items()))
        stage.fill_map(_ITEMS, ((idx, item_writer.known[ext]) for ext, idx in items.items()))
        clock.lap("items and users")

        units = stage.prepare(now)
        for start, stop in _timed_chunks(units):
            with transaction.atomic():
                report.ratings_written += stage.merge(start, stop)
            if merge_progress is not None:
                merge_progress(stop, units)
        clock.lap("ratings")
        touched = sorted(item_writer.known[ext] for ext in items)
        for start, stop in _timed_chunks(len(touched), first=500):
            with transaction.atomic():
                item_stats_refresh(item_ids=touched[start:stop])
        clock.lap("item stats")
    finally:
        stage.drop()
    return report


class _Clock:
    def __init__(self, laps: dict[str, float]):
        self.laps, self.last = laps, time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self.last, 2)
        self.last = now


def _timed_chunks(total: int, *, first: int | None = None) -> Iterator[tuple[int, int]]:
    """(start, stop) ranges over ``total`` rows, each sized from how long the last one took
    (the caller's work between two ``next`` calls) to take about ``MERGE_SECONDS``."""
    low, high = MERGE_MIN, MERGE_MAX
    start, size = 0, max(low, min(first or MERGE_FIRST, high))
    while start < total:
        stop = min(total, start + size)
        began = time.perf_counter()
        yield start, stop
        ratio = MERGE_SECONDS / max(time.perf_counter() - began, 1e-3)
        size = int(max(low, min(high, size * min(ratio, 2.0))))
        start = stop


class _Stage:
    """The temporary staging tables of this connection: the ratings, and maps from the
    file's user and item ids (numbered in order of appearance) to primary keys."""

    def __init__(self):
        self.vendor = connection.vendor
        self.ops = connection.ops

    def create(self) -> None:
        self.drop()  # left over from an import on this connection that died
        with connection.cursor() as cursor:
            if self.vendor == "sqlite":
                # The merge touches pages all over the ratings' indexes; with SQLite's
                # default 2 MiB page cache each one is read and spilled again and again
                # (measured on 100k rows: system CPU 2.3 s -> 0.07 s, user 2.1 -> 1.9 s).
                cursor.execute("PRAGMA cache_size")
                self.cache_size = cursor.fetchone()[0]
                cursor.execute(f"PRAGMA cache_size = {SQLITE_CACHE_KIB}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {_ROWS} (seq INTEGER PRIMARY KEY, line INTEGER NOT "
                "NULL, u INTEGER NOT NULL, i INTEGER NOT NULL, score DOUBLE PRECISION NOT "
                "NULL, ts BIGINT)"
            )
            for table in (_USERS, _ITEMS):
                cursor.execute(
                    f"CREATE TEMPORARY TABLE {table} (idx INTEGER PRIMARY KEY, pk BIGINT NOT NULL)"
                )

    def drop(self) -> None:
        with connection.cursor() as cursor:
            for table in (_ROWS, _USERS, _ITEMS, _PAIRS):
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
            if getattr(self, "cache_size", None) is not None:
                cursor.execute(f"PRAGMA cache_size = {int(self.cache_size)}")
                self.cache_size = None

    def fill(
        self, rows: Iterable[RatingRow | BadLine], report: ImportReport, skip_invalid: bool
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Stage every valid line; returns the file's user and item ids, each -> its number.

        Raises the first ``BadLine`` unless ``skip_invalid``.
        """
        users: dict[str, int] = {}
        items: dict[str, int] = {}

        def staged() -> Iterator[tuple]:
            seq = 0
            for row in rows:
                if type(row) is BadLine:
                    if not skip_invalid:
                        raise row
                    report.skip(row)
                    continue
                u = users.get(row.user)
                if u is None:
                    u = users[row.user] = len(users)
                i = items.get(row.item)
                if i is None:
                    i = items[row.item] = len(items)
                yield (seq, row.line_no, u, i, row.score, row.timestamp)
                seq += 1
            report.ratings_read = seq

        self._write(_ROWS, ("seq", "line", "u", "i", "score", "ts"), staged())
        return users, items

    def fill_map(self, table: str, rows: Iterable[tuple[int, int]]) -> None:
        self._write(table, ("idx", "pk"), rows)

    def _write(self, table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
        names = ", ".join(columns)
        with connection.cursor() as cursor:
            if self.vendor == "postgresql":
                # A bad line ends the COPY with an error; in a caller's transaction the
                # savepoint keeps that transaction usable.
                with (
                    transaction.atomic(),
                    cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
                ):
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(f"ANALYZE {table}")  # autovacuum never sees temporary tables
                return
            sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"
            if connection.in_atomic_block:
                cursor.executemany(sql, rows)
                return
            # One transaction of the temporary database only: a deferred BEGIN locks just
            # what it writes, so the site's writes to the live tables go on meanwhile.
            cursor.execute("BEGIN")
            try:
                cursor.executemany(sql, rows)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")

    def prepare(self, now: datetime) -> int:
        """Get the staged lines ready to merge; returns how many units ``merge`` takes.

        SQLite merges the lines themselves, in file order. PostgreSQL's upsert may not
        touch a row twice in one statement, so there each user and item pair is first
        reduced, outside the live tables, to its newest line (the later one on a tie) with
        its first line's time as ``created``: what applying the lines in order gives.
        """
        self.now = self.ops.adapt_datetimefield_value(now)
        if self.vendor != "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT COUNT(*) FROM {_ROWS}")
                return cursor.fetchone()[0]
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE {_PAIRS} AS SELECT "
                "row_number() OVER (ORDER BY u, i) - 1 AS n, u, i, score, created, updated "
                "FROM (SELECT DISTINCT ON (u, i) u, i, score, "
                "first_value(w) OVER (PARTITION BY u, i ORDER BY seq) AS created, w AS updated "
                f"FROM (SELECT *, COALESCE(to_timestamp(ts), %s) AS w FROM {_ROWS}) r "
                "ORDER BY u, i, w DESC, seq DESC) d",
                [self.now],
            )
            cursor.execute(f"CREATE INDEX ON {_PAIRS} (n)")
            cursor.execute(f"ANALYZE {_PAIRS}")
            cursor.execute(f"SELECT COUNT(*) FROM {_PAIRS}")
            return cursor.fetchone()[0]

    def merge(self, start: int, stop: int) -> int:
        """Upsert units ``start`` to ``stop`` (see ``prepare``) into the ratings; returns
        the rows written."""
        rating = self.ops.quote_name(Rating._meta.db_table)
        if self.vendor == "postgresql":
            select = (
                "SELECT u.pk, i.pk, r.score, r.created, r.updated "
                f"FROM {_PAIRS} r JOIN {_USERS} u ON u.idx = r.u JOIN {_ITEMS} i ON i.idx = r.i "
                "WHERE r.n >= %s AND r.n < %s"
            )
            params = [start, stop]
        else:
            # SQLite applies the rows one by one in this order, so the conflict clause
            # below already lets the newest line (the later one on a tie) win.
            select = (
                "SELECT u.pk, i.pk, r.score, r.w, r.w FROM "
                "(SELECT *, COALESCE(strftime('%%Y-%%m-%%d %%H:%%M:%%S', ts, 'unixepoch'), %s) "
                f"AS w FROM {_ROWS} WHERE seq >= %s AND seq < %s) r "
                f"JOIN {_USERS} u ON u.idx = r.u JOIN {_ITEMS} i ON i.idx = r.i "
                "WHERE true ORDER BY r.seq"
            )
            params = [self.now, start, stop]
        sql = (
            f"INSERT INTO {rating} (user_id, item_id, score, created, updated) {select} "
            "ON CONFLICT (user_id, item_id) DO UPDATE SET score = excluded.score, "
            f"updated = excluded.updated WHERE excluded.updated >= {rating}.updated"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return max(cursor.rowcount, 0)


class _ItemWriter:
    """Creates and updates the namespace's items; makes bare items for unknown ids."""

    def __init__(self, namespace: str):
        self.prefix = f"{namespace}:"
        self.known = {
            key[len(self.prefix) :]: pk
            for key, pk in Item.objects.filter(external_id__startswith=self.prefix).values_list(
                "external_id", "pk"
            )
        }
        self.created = 0

    def create_bare(self, external_ids: Iterable[str]) -> int:
        """Make an item titled "Item <id>" for each id not known yet; returns how many."""
        missing = sorted(ext for ext in external_ids if ext not in self.known)
        made = 0
        for start, stop in _timed_chunks(len(missing), first=CHUNK_SIZE):
            with transaction.atomic():
                created = Item.objects.bulk_create(
                    Item(title=f"Item {ext}", external_id=self.prefix + ext)
                    for ext in missing[start:stop]
                )
            made += len(created)
            self.known.update((item.external_id[len(self.prefix) :], item.pk) for item in created)
        return made

    def write(self, records: list[ItemRecord]) -> None:
        for start in range(0, len(records), CHUNK_SIZE):
            with transaction.atomic():
                self._write_batch(records[start : start + CHUNK_SIZE])

    def _write_batch(self, batch: list[ItemRecord]) -> None:
        genres = _genre_map({name for record in batch for name in record.genres})
        new = [record for record in batch if record.external_id not in self.known]
        existing = [record for record in batch if record.external_id in self.known]
        made = Item.objects.bulk_create(
            Item(title=r.title, year=r.year, external_id=self.prefix + r.external_id) for r in new
        )
        self.created += len(made)
        for record, item in zip(new, made, strict=True):
            self.known[record.external_id] = item.pk
        if existing:
            known = self.known
            rows = [Item(pk=known[r.external_id], title=r.title, year=r.year) for r in existing]
            Item.objects.bulk_update(rows, ["title", "year"])
        links = Item.genres.through
        ids = [self.known[r.external_id] for r in batch]
        links.objects.filter(item_id__in=ids).delete()
        links.objects.bulk_create(
            links(item_id=self.known[r.external_id], genre_id=genres[name])
            for r in batch
            for name in dict.fromkeys(r.genres)
        )


def _genre_map(names: set[str]) -> dict[str, int]:
    known = dict(Genre.objects.filter(name__in=names).values_list("name", "pk"))
    for name in sorted(names - known.keys()):
        slug = slugify(name) or "genre"
        base, n = slug, 2
        while Genre.objects.filter(slug=slug).exists():
            slug, n = f"{base}-{n}", n + 1
        known[name] = Genre.objects.create(name=name, slug=slug).pk
    return known


def _user_map(namespace: str) -> dict[str, int]:
    """The namespace's users: external id -> primary key."""
    prefix = f"{namespace}-"
    return {
        username[len(prefix) :]: pk
        for username, pk in get_user_model()
        .objects.filter(username__startswith=prefix)
        .values_list("username", "pk")
    }


def import_users_create(*, prefix: str, external_ids: list[str]) -> int:
    """Create a user named ``prefix + id`` (no usable password) for each id; returns how many.

    The one place an import makes users, in short transactions.
    """
    User = get_user_model()
    unusable = make_password(None)
    made = 0
    for start, stop in _timed_chunks(len(external_ids), first=CHUNK_SIZE):
        with transaction.atomic():
            made += len(
                User.objects.bulk_create(
                    User(username=usernames.validate_generated(prefix + ext), password=unusable)
                    for ext in external_ids[start:stop]
                )
            )
    return made


def ratings_bulk_upsert(rows: dict[tuple[int, int], tuple[datetime, float]]) -> int:
    """Insert or update ratings given as {(user_id, item_id): (time, score)} in one statement.

    The time becomes ``created`` of a new row and ``updated`` of any row it writes; a
    stored rating newer than the given one is kept. Item stats are not touched: call
    ``item_stats_refresh`` afterwards.
    """
    table = connection.ops.quote_name(Rating._meta.db_table)
    # ON CONFLICT ... DO UPDATE ... WHERE works on both SQLite (3.24+) and PostgreSQL;
    # the WHERE keeps a stored rating that is newer than the imported one.
    sql = (
        f"INSERT INTO {table} (user_id, item_id, score, created, updated) "
        "VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (user_id, item_id) DO UPDATE SET score = excluded.score, "
        f"updated = excluded.updated WHERE excluded.updated >= {table}.updated"
    )
    params = [(user, item, score, when, when) for (user, item), (when, score) in rows.items()]
    adapt = connection.ops.adapt_datetimefield_value
    params = [(u, i, s, adapt(c), adapt(w)) for u, i, s, c, w in params]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
    return len(params)
