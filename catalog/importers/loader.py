"""Bulk loading of rating files into the catalogue.

1. **Read.** The items file is read and checked whole, and the ratings file into arrays
   (``formats.RatingTable``: vectorised for plain numeric files, line by line otherwise).
   A bad line (unless skipped) stops the import here, naming the line, before anything is
   written: nothing of the file is merged.
2. **Items and users** are created or updated in short transactions (new users and bare
   items by ``COPY`` or one ``executemany``: ``rows_insert``).
3. **Reduce.** In numpy, each user and item pair comes down to its newest line (the later
   one on a tie; the import's start time where the file has none) with its first line's
   time as ``created``: what applying the lines in order gives. The pairs are sorted by
   (user, item), the unique index's order.
4. **Merge**, newer wins (a stored rating is replaced only by one at least as new), so
   importing again is idempotent:

   - SQLite, a file large beside the table (a first import; ``_sqlite_append``): the
     pairs appended in (user, item) order, every index kept up (all of them lead with the
     user, so each is written at its end), in transactions of whole users sized to take
     about ``MERGE_SECONDS``, each moving its items' stats and followed by a checkpoint of
     its pages (``_sqlite_checkpoint``): no transaction longer than that. Cut short, the
     same import (or any import) completes it.
   - SQLite, a smaller file (or ``online``): upserts of the sorted pairs in transactions
     sized to take about ``MERGE_SECONDS``, every index kept up, so the site's writes wait
     at most that long. A merge cut short is completed by running the same import again.
   - SQLite ``offline`` (the site stopped): one transaction with the table's own indexes
     dropped and built again after the rows (``_sqlite_bulk_load``); the site's writes
     wait for all of it; a crash rolls all of it back.
   - PostgreSQL: the new ratings table is built beside the live one (live rows merged with
     the pairs; into an empty table, the pairs alone by binary ``COPY`` with a block of
     ids reserved from the live sequence; then its foreign keys, checked, and its indexes,
     built on ``PG_BUILD_CONNECTIONS`` connections at once, all under temporary names,
     with ``PG_BUILD_SETTINGS``' sort memory), while a trigger notes
     which pairs the site writes meanwhile. One short transaction then re-applies those
     pairs (newer wins against the file), drops the old table and renames the new one
     and its indexes, constraints and id sequence into place (waiting at most
     ``SWAP_LOCK_SECONDS`` for its lock, then again). A crash before that transaction
     leaves the live table as it was (the next import clears what was left); after it,
     the same import again redoes the (already merged) work.
5. **Item stats** move with the ratings: each SQLite merge or append transaction adds
   what it changed to the items' ``rating_count``/``rating_sum`` (the offline load: what the file
   adds to an empty table, or the items counted again from the merged one); PostgreSQL
   counts the new table before the swap and moves the items' stats in short transactions
   of increments (``_SwapMerge.apply_stats``), which add up with the site's own: what
   raises them before the swap, the rest (measured in the swap transaction) after it, so
   they are never below what the live ratings add up to (a site's removal cannot take
   them below zero) and never written in the swap. A crash in between leaves some items'
   stats off their ratings until the same import is run again.

No ``rating_changed`` signal is sent per rating: the users' stored lists go stale by
their taste stamp, which is read from the database.
"""

import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts import usernames
from catalog.importers.formats import BadLine, Format, ItemRecord, RatingTable
from catalog.models import ALLOWED_SCORES, Genre, Item, Rating
from catalog.services import item_stats_refresh, items_stats_add
from catalog.signals import catalogue_changed

CHUNK_SIZE = 5000
IMPORT_MODES = ("auto", "offline", "online")
MAX_REPORTED_SKIPS = 20
# Each merge transaction aims at this long, so a site write waits at most about that.
MERGE_SECONDS = 0.5
# Pairs (or items, users) in the first merge transaction, and the bounds the adaptive
# size stays within.
MERGE_FIRST, MERGE_MIN, MERGE_MAX = 20_000, 2_000, 500_000
# Items in the first transaction of PostgreSQL's stats after the swap (then sized as the
# merge's): 60,000 took 4.7-4.8 s at 25M under load 10-13, so about 80 us an item.
STATS_FIRST = 2_000

# SQLite's page cache for the importing connection, in KiB (negative: a size, not pages).
SQLITE_CACHE_KIB = -256 * 1024
# Pages the write-ahead log may grow to before the importing connection copies it back
# (SQLite's default: 1000). Each merge transaction rewrites pages all over the
# indexes; checkpointing (with its fsync) after every one of them doubled the writes.
SQLITE_CHECKPOINT_PAGES = 25_000
# SQLite merges the pairs in blocks of about this many, users block by block, each block
# in (item, user) order. Chosen while the table had indexes by item (a transaction then
# wrote a narrow item range of them, where the plain (user, item) order wrote a page of
# each per row); with none left, a transaction still writes only its block's part of the
# user-ordered ones (not measured again since).
SQLITE_BLOCK_PAIRS = 50_000

# SQLite's offline load (``_sqlite_bulk_load``): pairs bound per ``executemany`` (their
# Python objects are the load's memory), and the importing connection's settings meanwhile:
# a page cache (KiB) that holds the new pages until the commit (the index builds run with
# the default one: see SQLITE_APPEND_PRAGMAS), no fsync (a crashed process still rolls back:
# the log is written, only not flushed to the disk), and helper threads for the index sorts.
SQLITE_BULK_ROWS = 250_000
SQLITE_ROWS_PER_STATEMENT = 150  # 750 parameters: under any SQLite's limit (999)
SQLITE_BULK_PRAGMAS = {
    "cache_size": -1024 * 1024,
    "synchronous": "OFF",
    "threads": 2,
    # Not checked row by row (two index lookups a row); the load checks instead that the
    # file's users and items are all still there (``_sqlite_parents_exist``).
    "foreign_keys": "OFF",
}

# The importing connection's settings while it inserts the rows (``_sqlite_insert``, the
# append's and the offline load's): the score's CHECK (an IN list of ten values) not
# evaluated row by row. Callers check the scores first (``_scores_checked``; the reader
# checked them too); the items' stats and every other write keep their CHECKs, and the
# site's connections all of them. Measured (/tmp script, 2M sorted rows into the live
# schema, 150 rows a statement, SQLite 3.40, medians of 2): 4.68 -> 2.67 us a row, 43% of
# SQLite's insert work.
SQLITE_INSERT_PRAGMAS = {"ignore_check_constraints": "ON"}

# SQLite's append (``_sqlite_append``), taken (mode "auto") for a file with at least this
# fraction of the table's rows in pairs: pairs in the first transaction, and the importing
# connection's settings meanwhile. (The offline load's index builds run with the
# connection's own page cache: with this one, or sorts in memory, ``CREATE INDEX`` took
# 2-4x the CPU, 10M rows: 4.4 s with the default 2 MiB, 8.3 s with 256 MiB, 12.8 s with
# 1 GiB, sorts in memory and two threads, 18.0 s with sorts in memory alone.)
SQLITE_APPEND_ABOVE_FRACTION = 4
SQLITE_APPEND_FIRST = 50_000
# Seconds the append leaves the write lock free between two transactions, at least. A
# site write waiting for it sleeps in SQLite's busy handler, 100 ms at a time once it has
# waited ~330 ms, and slept through shorter gaps into the next transaction: at 10M the
# gaps (the next rows' preparation and the checkpoint) were 106 ms at the median, 60 ms
# the shortest, 43 of 111 under 100 ms, and site writes waited up to 1.6 s (25M: 2.4 s)
# though no transaction held the lock over 0.72 s (bench/README, stop 22).
SQLITE_APPEND_GAP = 0.12
SQLITE_APPEND_PRAGMAS = {
    "cache_size": SQLITE_CACHE_KIB,
    "wal_autocheckpoint": SQLITE_CHECKPOINT_PAGES,
    # Checked once per user and item of each transaction instead of once per row
    # (``_sqlite_parents_exist``, inside the transaction that writes the rows).
    "foreign_keys": "OFF",
}

# PostgreSQL: the staged pairs (temporary), the table built beside the live one, the log
# of pairs the site wrote meanwhile and the trigger that fills it.
_PAIRS = "imp_stage_pairs"
_NEW, _LOG, _STATS = "imp_rating_new", "imp_rating_log", "imp_rating_stats"
_DELTA = "imp_item_delta"
_TRIGGER = _LOG_FN = "imp_rating_log"
_US = 1_000_000
# PostgreSQL rebuilds the ratings table when the file has at least this fraction of its
# rows in pairs; a smaller file is upserted in place in short transactions (as on SQLite),
# which costs what the file touches, not the whole table.
PG_SWAP_ABOVE_FRACTION = 4
# A live table with at most this many rows takes the empty table's path: the pairs copied
# straight into the new table, the live rows re-applied in the swap, as the site's writes
# during the import are.
SWAP_COPY_LIVE_MAX = 10_000
# The swap waits this long for the live table's lock (site writes queue behind it), then
# lets them pass and tries again, this many times.
SWAP_LOCK_SECONDS, SWAP_ATTEMPTS = 0.5, 60
# Rows of the binary COPY built and sent at a time.
COPY_BLOCK_ROWS = 1 << 18
# PostgreSQL's memory for the index builds' sorts (the server's default, 64 MB, is shared
# among a parallel build's processes, so they spill to disk from about 1M ratings) and for
# the foreign-key checks' and item stats' hash tables (default 4 MB), for the importing
# session only, while it builds the new table's indexes.
PG_BUILD_SETTINGS = {"maintenance_work_mem": "1GB", "work_mem": "256MB"}
# Connections building the new table's indexes at once (each build is itself a leader and
# up to ``max_parallel_maintenance_workers`` helpers, which share its sort memory; the
# leader alone merges the sorted runs and writes the index).
PG_BUILD_CONNECTIONS = 2
# PostgreSQL's binary timestamps count microseconds from 2000-01-01 UTC.
_PG_EPOCH_US = 946_684_800 * _US


@dataclass
class ImportReport:
    format: str
    items_created: int = 0
    users_created: int = 0
    ratings_read: int = 0
    ratings_written: int = 0
    skipped: list[str] = field(default_factory=list)
    skipped_count: int = 0
    # Wall seconds of each phase (read, items and users, stage, ... item stats).
    seconds: dict[str, float] = field(default_factory=dict)
    # This process's CPU seconds in each phase (PostgreSQL's own work is not in them).
    cpu_seconds: dict[str, float] = field(default_factory=dict)

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
    on_phase: Callable[[str], None] | None = None,
    mode: str = "auto",
) -> ImportReport:
    """Import ``source`` into the database; raise ``BadLine`` (nothing merged) on a bad line.

    ``progress`` is called with the bytes of the ratings file read since its last call;
    ``merge_progress`` with (pairs done, pairs in all) as the ratings are merged (SQLite)
    or staged and built (PostgreSQL); ``on_phase`` with each phase's name as it ends.
    ``mode`` (SQLite): "auto" bulk-loads into an empty ratings table and merges online
    into a non-empty one; "offline" bulk-loads whatever the table holds (the site is
    stopped); "online" always merges in short transactions (see ``_sqlite_bulk_load``).
    """
    if mode not in IMPORT_MODES:
        raise ValueError(f"mode must be one of {IMPORT_MODES}, not {mode!r}")
    report = ImportReport(format=source.name)
    item_records = list(source.items())  # checked whole before anything is written
    clock = _Clock(report.seconds, on_phase, report.cpu_seconds)
    table = source.rating_table(progress, skip_invalid=skip_invalid)
    for error in table.skipped:
        report.skip(error)
    report.ratings_read = len(table)
    now = timezone.now()
    # Every new user's name obeys the site's username rule, checked before anything is
    # written, so a bad id merges nothing (accounts.usernames).
    for ext in table.users:
        usernames.validate_generated(f"{namespace}-{ext}")
    clock.lap("read")

    item_writer = _ItemWriter(namespace)
    item_writer.write(item_records)
    report.items_created = item_writer.created + item_writer.create_bare(table.items)
    catalogue_changed.send(sender=Item)  # bulk writes send no model signals
    user_pks = _user_map(namespace)
    report.users_created = import_users_create(
        prefix=f"{namespace}-", external_ids=[ext for ext in table.users if ext not in user_pks]
    )
    if report.users_created:
        user_pks = _user_map(namespace)
    user_pk = np.array([user_pks[ext] for ext in table.users], np.int64)
    item_pk = np.array([item_writer.known[ext] for ext in table.items], np.int64)
    clock.lap("items and users")

    pairs = _Pairs.newest(table, user_pk, item_pk, now)
    del table, user_pk, item_pk  # the lines' arrays, no longer needed: memory for the merge
    if connection.vendor == "postgresql":
        swap = _SwapMerge(pairs, clock, merge_progress)
        if len(pairs) * PG_SWAP_ABOVE_FRACTION >= max(_pg_rows_estimate(), 1):
            report.ratings_written = swap.run()
        else:
            report.ratings_written = swap.merge_in_place()
            clock.lap("merge")
    elif mode == "offline":
        report.ratings_written = _sqlite_bulk_load(pairs, now, merge_progress, clock)
    elif mode == "auto" and len(pairs) * SQLITE_APPEND_ABOVE_FRACTION >= _sqlite_rows_estimate():
        report.ratings_written = _sqlite_append(pairs, now, merge_progress)
        clock.lap("merge")
    else:
        report.ratings_written = _sqlite_merge(pairs, now, merge_progress)
        clock.lap("merge")
    return report


class _Clock:
    """Each phase's wall seconds into ``laps`` and this process's CPU seconds into ``cpu``
    (on a busy machine the wall clock also counts waiting for a core)."""

    def __init__(self, laps, on_phase: Callable[[str], None] | None, cpu=None):
        self.laps, self.cpu, self.on_phase = laps, cpu if cpu is not None else {}, on_phase
        self.last, self.last_cpu = time.perf_counter(), time.process_time()

    def lap(self, name: str) -> None:
        now, now_cpu = time.perf_counter(), time.process_time()
        self.laps[name] = round(now - self.last, 2)
        self.cpu[name] = round(now_cpu - self.last_cpu, 2)
        self.last, self.last_cpu = now, now_cpu
        if self.on_phase is not None:
            self.on_phase(name)


def _timed_chunks(
    total: int, *, first: int | None = None, snap: Callable[[int], int] | None = None
) -> Iterator[tuple[int, int]]:
    """(start, stop) ranges over ``total`` rows, each sized from how long the last one took
    (the caller's work between two ``next`` calls) to take about ``MERGE_SECONDS``;
    ``snap`` moves each stop to where a range may end (at or after it)."""
    low, high = MERGE_MIN, MERGE_MAX
    start, size = 0, max(low, min(first or MERGE_FIRST, high))
    while start < total:
        stop = min(total, start + size)
        if snap is not None:
            stop = min(total, snap(stop))
        began = time.perf_counter()
        yield start, stop
        ratio = MERGE_SECONDS / max(time.perf_counter() - began, 1e-3)
        size = int(max(low, min(high, size * min(ratio, 2.0))))
        start = stop


@dataclass
class _Pairs:
    """One row per (user, item) primary-key pair, sorted by (user, item); times in
    microseconds since the Unix epoch; ``now_us`` is the import's start."""

    user: np.ndarray
    item: np.ndarray
    score: np.ndarray
    created: np.ndarray
    updated: np.ndarray
    now_us: int

    def __len__(self) -> int:
        return int(self.user.size)

    @classmethod
    def newest(cls, table: RatingTable, user_pk, item_pk, now: datetime) -> "_Pairs":
        """Each pair's newest line (the later one on a tie) and its first line's time.

        One stable sort of an int64 key per line (the user's and item's ranks by primary
        key), then each pair's newest line picked by reductions over the sorted lines: at
        10M lines about 4x faster than a lexsort on (user, item, time, line), and fastest
        where the file already runs in user order, as MovieLens' and most exports do."""
        now_us = (now - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        if not len(table):
            empty = np.zeros(0, np.int64)
            return cls(empty, empty, np.zeros(0), empty, empty, now_us)
        n_items = max(item_pk.size, 1)
        user_rank, item_rank = _ranks(user_pk), _ranks(item_pk)
        key = user_rank[table.user] * n_items
        key += item_rank[table.item]
        order = np.argsort(key, kind="stable")  # by pair, then by line
        key = key[order]  # sorted; the unsorted keys freed (at 25M lines, 200 MB a copy)
        starts = np.r_[0, np.flatnonzero(key[1:] != key[:-1]) + 1]
        del key
        when = np.where(table.has_ts, table.ts * _US, now_us)
        first_row = order[starts]  # the pair's first line (the sort is stable)
        if starts.size == order.size:  # no pair twice: each line is its pair's newest
            newest = first_row
        else:  # the last line of each pair's newest time
            sorted_when = when[order]
            newest_when = np.repeat(
                np.maximum.reduceat(sorted_when, starts), np.diff(np.r_[starts, order.size])
            )
            at = np.where(sorted_when == newest_when, np.arange(order.size), -1)
            newest = order[np.maximum.reduceat(at, starts)]
        return cls(
            user_pk[table.user[first_row]],
            item_pk[table.item[first_row]],
            table.score[newest],
            when[first_row],
            when[newest],
            now_us,
        )


def _ranks(pks: np.ndarray) -> np.ndarray:
    """Each primary key's rank among ``pks`` (distinct): ranks order as the keys do."""
    ranks = np.empty(pks.size, np.int64)
    ranks[np.argsort(pks)] = np.arange(pks.size)
    return ranks


def _sqlite_merge(pairs: _Pairs, now: datetime, merge_progress) -> int:
    """Upsert the pairs in (user, item) order, newer wins, in short transactions, each
    moving the items' ``rating_count``/``rating_sum`` by what it changed."""
    rating, item = (connection.ops.quote_name(m._meta.db_table) for m in (Rating, Item))
    now_text = connection.ops.adapt_datetimefield_value(now)
    # Times from the file are whole seconds, formatted by SQLite as Django stores them; a
    # line without one gets the import's start time as Django writes it.
    stamp = f"COALESCE(strftime('%Y-%m-%d %H:%M:%S', ?, 'unixepoch'), '{now_text}')"

    def seconds(us: np.ndarray) -> list:
        return _unix_seconds(us, pairs.now_us)

    chunk = f"(SELECT * FROM {_PAIRS} WHERE seq >= ? AND seq < ?)"
    stats = (
        f"UPDATE {item} SET rating_count = rating_count + d.n, rating_sum = rating_sum + d.s "
        "FROM (SELECT p.i, SUM(l.id IS NULL) AS n, SUM(CASE WHEN l.id IS NULL THEN p.score "
        "WHEN p.updated >= l.updated THEN p.score - l.score ELSE 0 END) AS s "
        f"FROM {chunk} p LEFT JOIN {rating} l ON l.user_id = p.u AND l.item_id = p.i "
        f"GROUP BY p.i) d WHERE {item}.id = d.i"
    )
    upsert = (
        f"INSERT INTO {rating} (user_id, item_id, score, created, updated) "
        f"SELECT u, i, score, created, updated FROM {chunk} WHERE true "
        "ON CONFLICT (user_id, item_id) DO UPDATE SET score = excluded.score, "
        f"updated = excluded.updated WHERE excluded.updated >= {rating}.updated"
    )
    written = 0
    with connection.cursor() as cursor:
        raw = cursor.connection  # the DB-API connection: Django's cursor wants %s, not ?
        raw.execute(f"DROP TABLE IF EXISTS temp.{_PAIRS}")
        raw.execute(
            f"CREATE TEMPORARY TABLE {_PAIRS} (seq INTEGER PRIMARY KEY, u INTEGER NOT NULL, "
            "i INTEGER NOT NULL, score REAL NOT NULL, created TEXT NOT NULL, "
            "updated TEXT NOT NULL)"
        )
        order = _block_order(pairs)
        rows = zip(
            range(len(pairs)),
            pairs.user[order].tolist(),
            pairs.item[order].tolist(),
            pairs.score[order].tolist(),
            seconds(pairs.created[order]),
            seconds(pairs.updated[order]),
            strict=True,
        )
        # One transaction of the temporary database only: a deferred BEGIN locks just
        # what it writes, so the site's writes to the live tables go on meanwhile.
        own = not connection.in_atomic_block
        if own:
            raw.execute("BEGIN")
        raw.executemany(f"INSERT INTO {_PAIRS} VALUES (?, ?, ?, ?, {stamp}, {stamp})", rows)
        if own:
            raw.execute("COMMIT")
        # The upserts touch pages all over the table's indexes; with SQLite's default
        # 2 MiB page cache each one is read and spilled again and again (measured on 100k
        # rows: system CPU 2.3 s -> 0.07 s, user 2.1 -> 1.9 s).
        cache_size = raw.execute("PRAGMA cache_size").fetchone()[0]
        raw.execute(f"PRAGMA cache_size = {SQLITE_CACHE_KIB}")
        checkpoint = raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        raw.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_CHECKPOINT_PAGES}")
        try:
            for start, stop in _timed_chunks(len(pairs)):
                with transaction.atomic():
                    raw.execute(stats, (start, stop))
                    written += max(raw.execute(upsert, (start, stop)).rowcount, 0)
                if merge_progress is not None:
                    merge_progress(stop, len(pairs))
        finally:
            raw.execute(f"PRAGMA cache_size = {int(cache_size)}")
            raw.execute(f"PRAGMA wal_autocheckpoint = {int(checkpoint)}")
            raw.execute(f"DROP TABLE IF EXISTS temp.{_PAIRS}")
    return written


def _unix_seconds(us: np.ndarray, now_us: int) -> list:
    """Microsecond times as whole Unix seconds, None for the import's start time (a line
    without a time), for SQLite's ``strftime(..., 'unixepoch')``."""
    out = (us // _US).astype(object)
    out[us == now_us] = None
    return out.tolist()


def _sqlite_bulk_load(pairs: _Pairs, now: datetime, merge_progress, clock) -> int:
    """SQLite's offline load (the site stopped), in one transaction: the ratings table's
    own indexes (all but the unique (user, item) one, which lives in the table's
    definition) dropped, the pairs appended in (user, item) order (the table's id order and
    the unique index's: every page is written once, at the end of its B-tree), newer wins
    against rows already there, the indexes built again by ``CREATE INDEX`` (one sort each)
    and the items' stats moved with the ratings. Returns how many ratings were written.

    The site's writes would wait for the whole load (up to ``DB_LOCK_TIMEOUT_SECONDS``,
    then 503); readers go on (WAL). A crash anywhere rolls all of it back (the indexes
    too): the same import run again does it all.
    """
    _scores_checked(pairs)
    q = connection.ops.quote_name
    rating, table = q(Rating._meta.db_table), Rating._meta.db_table
    now_text = connection.ops.adapt_datetimefield_value(now)
    n = len(pairs)
    with connection.cursor() as cursor:
        raw = cursor.connection
        with _sqlite_pragmas(raw, SQLITE_BULK_PRAGMAS), transaction.atomic():
            empty = raw.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {rating})").fetchone()[0]
            indexes = raw.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                "AND sql IS NOT NULL ORDER BY name",
                [table],
            ).fetchall()
            for name, _ in indexes:
                raw.execute(f"DROP INDEX {q(name)}")
            written = 0
            for start in range(0, n, SQLITE_BULK_ROWS):
                stop = min(n, start + SQLITE_BULK_ROWS)
                written += _sqlite_insert(raw, _sqlite_rows(pairs, start, stop, now_text))
                if merge_progress is not None:
                    merge_progress(stop, n)
            _sqlite_parents_exist(raw, pairs.user, pairs.item)
            clock.lap("load")
            # The sorts with SQLite's default page cache (see SQLITE_APPEND_PRAGMAS).
            with _sqlite_pragmas(raw, {"cache_size": -2000}):
                for _, sql in indexes:
                    raw.execute(sql)
            clock.lap("indexes")
            if empty:  # the stats move by the pairs, as each online merge step's do
                ids, at = np.unique(pairs.item, return_inverse=True)
                counts = np.bincount(at, minlength=ids.size)
                sums = np.bincount(at, weights=pairs.score, minlength=ids.size)
                items_stats_add(zip(counts.tolist(), sums.tolist(), ids.tolist(), strict=True))
            else:  # counted again from the merged table, in one grouped scan
                item_stats_refresh()
            clock.lap("item stats")
    clock.lap("commit")  # with the write-ahead log's checkpoint into the database file
    return written


def _sqlite_rows(pairs: _Pairs, start: int, stop: int, now_text: str) -> np.ndarray:
    """The pairs start:stop as rows (user, item, score, created, updated) of Python
    objects, times as the text Django stores."""
    rows = np.empty((stop - start, 5), object)
    rows[:, 0] = pairs.user[start:stop].tolist()
    rows[:, 1] = pairs.item[start:stop].tolist()
    rows[:, 2] = pairs.score[start:stop].tolist()
    created, updated = (t[start:stop] for t in (pairs.created, pairs.updated))
    rows[:, 3] = _sqlite_datetimes(created, pairs.now_us, now_text)
    rows[:, 4] = rows[:, 3]
    changed = np.flatnonzero(updated != created)
    if changed.size:
        rows[changed, 4] = _sqlite_datetimes(updated[changed], pairs.now_us, now_text)
    return rows


def _sqlite_insert(raw, rows: np.ndarray) -> int:
    """Insert ``rows`` (``_sqlite_rows``, scores checked by ``_scores_checked``) into the
    ratings table, newer wins against a row already there (a rating of the site's, or of
    an earlier run), without the score's CHECK (``SQLITE_INSERT_PRAGMAS``); returns how
    many rows were written.

    Many rows per statement: each statement run has its own overhead (with the CHECK,
    whose IN list was built once per run, 1M rows took 7.6 s CPU one row a statement
    against 3.5 s; without it, the /tmp script of ``SQLITE_INSERT_PRAGMAS``: 5.50 against
    2.27 us a row at 150 rows a statement)."""
    rating = connection.ops.quote_name(Rating._meta.db_table)
    insert = f"INSERT INTO {rating} (user_id, item_id, score, created, updated) VALUES "
    # An equal row is left alone (a rerun's rows, already in, are not written again).
    upsert = (
        " ON CONFLICT (user_id, item_id) DO UPDATE SET score = excluded.score, "
        f"updated = excluded.updated WHERE excluded.updated >= {rating}.updated AND "
        f"(excluded.updated <> {rating}.updated OR excluded.score <> {rating}.score)"
    )
    per = SQLITE_ROWS_PER_STATEMENT
    values = ", ".join(["(?, ?, ?, ?, ?)"] * per)
    written = 0
    whole = rows.shape[0] // per * per
    with _sqlite_pragmas(raw, SQLITE_INSERT_PRAGMAS):
        if whole:
            params = rows[:whole].reshape(-1, 5 * per).tolist()
            written += max(raw.executemany(insert + values + upsert, params).rowcount, 0)
        if whole < rows.shape[0]:
            rest = rows[whole:]
            sql = insert + ", ".join(["(?, ?, ?, ?, ?)"] * rest.shape[0]) + upsert
            written += max(raw.execute(sql, rest.ravel().tolist()).rowcount, 0)
    return written


def _sqlite_rows_estimate() -> int:
    """About how many ratings the table holds: its largest id (ids only grow), 0 empty."""
    rating = connection.ops.quote_name(Rating._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {rating}")
        return cursor.fetchone()[0]


def _sqlite_append(pairs: _Pairs, now: datetime, merge_progress) -> int:
    """SQLite's load of a file large beside the table (a first import), the site's
    writes going on: the pairs appended in (user, item) order in transactions of about
    ``MERGE_SECONDS``, each a range of whole users. Every index of the table leads with
    the user (the unique (user, item) one and (user, -updated)), so each transaction
    writes each B-tree at its end (a table with an index by item wrote about a page of it
    per row: bench/README, stop 21), and none is dropped or built again: no transaction is
    longer than one range's, and between two the lock is left free at least
    ``SQLITE_APPEND_GAP`` for the site's writes waiting for it. Returns how many ratings
    were written.

    Each transaction reads the rows its users already have (the site's, rated meanwhile;
    an earlier run's) and moves the items' stats by what it changes, newer wins, in that
    transaction: a crash between two leaves the table and the stats agreeing, and the same
    import run again completes it (by appending again, or by the online merge if the site
    added more than three times the file's pairs meanwhile).
    """
    _scores_checked(pairs)
    q = connection.ops.quote_name
    rating = q(Rating._meta.db_table)
    now_text = connection.ops.adapt_datetimefield_value(now)
    n, written = len(pairs), 0
    user_starts = np.flatnonzero(np.r_[True, pairs.user[1:] != pairs.user[:-1]]) if n else []

    def at_user_start(stop: int) -> int:
        at = np.searchsorted(user_starts, stop)
        return int(user_starts[at]) if at < len(user_starts) else n

    with connection.cursor() as cursor:
        raw = cursor.connection
        with _sqlite_pragmas(raw, SQLITE_APPEND_PRAGMAS):
            committed = None
            for start, stop in _timed_chunks(n, first=SQLITE_APPEND_FIRST, snap=at_user_start):
                rows = _sqlite_rows(pairs, start, stop, now_text)
                users, items = pairs.user[start:stop], pairs.item[start:stop]
                count = np.ones(stop - start)
                total = pairs.score[start:stop].copy()
                if committed is not None:  # the write lock free for the site's writes
                    time.sleep(max(0.0, SQLITE_APPEND_GAP - (time.perf_counter() - committed)))
                with transaction.atomic():
                    there = raw.execute(
                        f"SELECT user_id, item_id, score, CAST(updated AS TEXT) FROM {rating} "
                        "WHERE user_id BETWEEN ? AND ?",
                        [int(users[0]), int(users[-1])],
                    ).fetchall()
                    if there:  # what the pairs of those rows change, newer wins
                        keys = users * (1 << 32) + items  # sorted, as the pairs are
                        old_user, old_item, old_score, old_updated = map(
                            np.array, zip(*there, strict=True)
                        )
                        old_keys = old_user.astype(np.int64) * (1 << 32) + old_item
                        at = np.minimum(np.searchsorted(keys, old_keys), keys.size - 1)
                        hit = keys[at] == old_keys
                        at = at[hit]
                        # Times compared as SQLite compares them below: as text.
                        wins = (rows[at, 4] >= old_updated[hit].astype(object)).astype(bool)
                        count[at] = 0
                        total[at] = np.where(wins, total[at] - old_score[hit], 0.0)
                    _sqlite_parents_exist(raw, users, items)
                    written += _sqlite_insert(raw, rows)
                    ids, where = np.unique(items, return_inverse=True)
                    counts = np.bincount(where, weights=count, minlength=ids.size)
                    sums = np.bincount(where, weights=total, minlength=ids.size)
                    moved = np.flatnonzero((counts != 0) | (sums != 0))
                    items_stats_add(
                        zip(
                            counts[moved].astype(np.int64).tolist(),
                            sums[moved].tolist(),
                            ids[moved].tolist(),
                            strict=True,
                        )
                    )
                committed = time.perf_counter()
                _sqlite_checkpoint(raw)
                if merge_progress is not None:
                    merge_progress(stop, n)
    return written


def _sqlite_checkpoint(raw) -> None:
    """Copy the write-ahead log's pages into the database file (a passive checkpoint: no
    lock the site's writes wait for), after each transaction of the append.

    The importing connection checkpoints only past ``SQLITE_CHECKPOINT_PAGES``; the
    site's connections past SQLite's default 1,000 pages, so without this the site's next
    write copied the pages of the import's last transaction after its own commit, and
    waited for that and its ``fsync`` (10M ratings: 4 writes of ~100 over 1 s during the
    append, none with it). Not done in the online merge, whose upserts rewrite the same
    index pages again and again: checkpointing after each of its transactions doubled its
    writes when the table had an index by item (see ``SQLITE_CHECKPOINT_PAGES``)."""
    if not connection.in_atomic_block:  # (a test's transaction: nothing committed yet)
        raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _scores_checked(pairs: _Pairs) -> None:
    """Raise ``ValueError`` (before anything is written) unless every score is one the
    ratings table's CHECK allows: the loads that write with SQLite's CHECK constraints
    off (``ignore_check_constraints``) check the scores here, once, in numpy."""
    bad = np.flatnonzero(~np.isin(pairs.score, ALLOWED_SCORES))
    if bad.size:
        raise ValueError(
            f"{bad.size} scores not allowed (first: {float(pairs.score[bad[0]])!r}): nothing loaded"
        )


def _sqlite_parents_exist(raw, users: np.ndarray, items: np.ndarray) -> None:
    """Raise ``IntegrityError`` (rolling the transaction back) unless every user and item
    exists: the check the foreign keys would make, once per user and item instead of once
    per row (one deleted meanwhile, say; running the import again then completes)."""
    q = connection.ops.quote_name
    for model, ids in ((get_user_model(), users), (Item, items)):
        wanted = np.unique(ids).tolist()
        # The ids as one JSON array: one statement, however many.
        found = raw.execute(
            f"SELECT COUNT(*) FROM {q(model._meta.db_table)} WHERE id IN "
            "(SELECT value FROM json_each(?))",
            [json.dumps(wanted)],
        ).fetchone()[0]
        if found != len(wanted):
            raise IntegrityError(
                f"{len(wanted) - found} {model._meta.verbose_name_plural} of the file were "
                "deleted during the import: nothing was loaded; run it again"
            )


def _sqlite_datetimes(us: np.ndarray, now_us: int, now_text: str) -> list[str]:
    """Microsecond times (whole seconds) as the text Django stores in SQLite ("YYYY-MM-DD
    HH:MM:SS"; ``now_text`` for the import's start time), from a table of each day's and
    each second of the day's text: a fifth of numpy's ``datetime_as_string``'s time."""
    day, second = np.divmod(us // _US, 86_400)
    days, at = np.unique(day, return_inverse=True)
    day_text = [d.isoformat() for d in days.astype("datetime64[D]").tolist()]
    clock = _clock_texts()
    text = [day_text[d] + clock[s] for d, s in zip(at.tolist(), second.tolist(), strict=True)]
    for row in np.flatnonzero(us == now_us).tolist():
        text[row] = now_text
    return text


@cache
def _clock_texts() -> list[str]:
    """ " HH:MM:SS" for each second of a day."""
    return [f" {h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]


@contextmanager
def _sqlite_pragmas(raw, settings: dict[str, object]) -> Iterator[None]:
    """SQLite's ``settings`` (pragma -> value) on the DB-API connection ``raw`` meanwhile,
    then its own back. One that cannot change inside a transaction (already open, as in
    a test) is left as it is."""
    before = {}
    for name, value in settings.items():
        old = raw.execute(f"PRAGMA {name}").fetchone()[0]
        try:
            raw.execute(f"PRAGMA {name} = {value}")
        except sqlite3.OperationalError:
            continue
        before[name] = old
    try:
        yield
    finally:
        for name, value in before.items():
            raw.execute(f"PRAGMA {name} = {value}")


def _block_order(pairs: _Pairs) -> np.ndarray:
    """Positions of the (user, item)-sorted pairs in SQLite's merge order (see
    ``SQLITE_BLOCK_PAIRS``)."""
    if SQLITE_BLOCK_PAIRS <= 0 or not len(pairs):
        return np.arange(len(pairs))
    n = len(pairs)
    starts = np.r_[True, pairs.user[1:] != pairs.user[:-1]]
    # Each pair's user's first position: a user's pairs all fall in one block.
    first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    block = first // SQLITE_BLOCK_PAIRS
    return np.lexsort((pairs.user, pairs.item, block))


def _pg_rows_estimate() -> int:
    """PostgreSQL's estimate of the live ratings (0 for an empty or never-counted table)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint, EXISTS (SELECT 1 FROM "
            f"{connection.ops.quote_name(Rating._meta.db_table)}) FROM pg_class "
            "WHERE oid = %s::regclass",
            [Rating._meta.db_table],
        )
        estimate, any_row = cursor.fetchone()
    return max(estimate, 1) if any_row else 0


@contextmanager
def _pg_settings(settings: dict[str, str]) -> Iterator[None]:
    """PostgreSQL's ``settings`` (name -> value) for this session meanwhile."""
    before = {}
    with connection.cursor() as cursor:
        for name, value in settings.items():
            cursor.execute("SELECT current_setting(%s)", [name])
            before[name] = cursor.fetchone()[0]
            cursor.execute("SELECT set_config(%s, %s, false)", [name, value])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for name, value in before.items():
                cursor.execute("SELECT set_config(%s, %s, false)", [name, value])


def _pg_run_in_parallel(statements: list[str], connections: int) -> None:
    """Run ``statements`` (each its own transaction) on up to ``connections`` database
    connections at once, each taking the next statement as it finishes one, with this
    session's ``PG_BUILD_SETTINGS``; raise the first error once all have stopped.

    Inside a transaction (a test's) the other connections could not see its tables: the
    statements then run one after another on this connection."""
    if connections <= 1 or len(statements) <= 1 or connection.in_atomic_block:
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)
        return
    todo = list(reversed(statements))  # popped from the end: in the given order
    lock, errors = threading.Lock(), []

    def work() -> None:
        # A thread's own connection (Django's are per thread), closed when it is done.
        try:
            with _pg_settings(PG_BUILD_SETTINGS), connection.cursor() as cursor:
                while True:
                    with lock:
                        if not todo or errors:
                            return
                        sql = todo.pop()
                    cursor.execute(sql)
        except Exception as error:  # noqa: BLE001 - raised in the caller's thread below
            with lock:
                errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=work, name=f"import-build-{n}")
        for n in range(min(connections, len(statements)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


class _SwapMerge:
    """PostgreSQL: build the merged ratings table beside the live one, then swap it in."""

    def __init__(self, pairs: _Pairs, clock: _Clock, merge_progress):
        self.pairs, self.clock, self.merge_progress = pairs, clock, merge_progress
        self.live = Rating._meta.db_table
        self.q = connection.ops.quote_name

    def run(self) -> int:
        self.clear()
        # Tracking starts first: every site write after it is noted, whatever the build
        # reads afterwards.
        self.track()
        live = self.q(self.live)
        self._exec(
            f"CREATE TABLE {_NEW} (LIKE {live} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            "INCLUDING IDENTITY)"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {live} LIMIT %s) l", [SWAP_COPY_LIVE_MAX + 1]
            )
            live_rows = cursor.fetchone()[0]
        copied = live_rows <= SWAP_COPY_LIVE_MAX
        if copied:
            if live_rows:
                # The few live rows (the site's, rated while the file was read, say) are
                # noted as the site's writes during the import are: the swap re-applies
                # them, newer wins. (Merging them in the build instead took the staged
                # path: at 10M under load 12, 5 minutes against the COPY's one.)
                self._exec(f"INSERT INTO {_LOG} SELECT user_id, item_id FROM {live}")
            # Nothing (else) to merge with: the pairs go straight into the new table. The ids are
            # reserved in a transaction of their own: its lock on the live table (which
            # holds off the site's inserts) ends with it, not after the COPY. The table,
            # emptied in the COPY's own transaction, takes the rows already frozen: the
            # index builds' scans then set no hint bits (a write of every page again).
            ids = self.reserve_ids()
            with transaction.atomic():
                self._exec(f"TRUNCATE {_NEW}")
                self.copy(_NEW, ids=ids, freeze=True)
            written = len(self.pairs)
            self.clock.lap("stage")
            self.clock.lap("build")
        else:
            with transaction.atomic():
                self._exec(
                    f"CREATE TEMPORARY TABLE {_PAIRS} (u bigint NOT NULL, i bigint NOT NULL, "
                    "score double precision NOT NULL, created timestamptz NOT NULL, "
                    "updated timestamptz NOT NULL)"
                )
                self.copy(_PAIRS)
                self._exec(f"ANALYZE {_PAIRS}")
            self.clock.lap("stage")
            with transaction.atomic():
                written = self.build_rows()
            self.clock.lap("build")
        with _pg_settings(PG_BUILD_SETTINGS):
            renames = self.build_indexes(stats_from_pairs=copied)
        self.clock.lap("indexes")
        self.stats_ahead()
        self.clock.lap("item stats ahead")
        self.when_free(lambda: self.swap(renames))
        self.clock.lap("swap")
        self.apply_stats()
        self.clock.lap("item stats")
        self._exec(f"DROP TABLE IF EXISTS {_PAIRS}, {_STATS}, {_DELTA}")
        return written

    def stats_ahead(self) -> None:
        """What the swap will raise the items' stats by, moved before it (``apply_stats``):
        from here to the end the stats are at least what the live ratings add up to, before
        the swap and after it, until the rest (what lowers them) moves after it. So the
        site's own decrements (a rating removed or lowered) can never take an item's stats
        below zero (its CHECK) while they lag. A crash before the swap leaves them ahead
        until the same import, run again, measures and moves them back."""
        item = self.q(Item._meta.db_table)
        self._exec(
            f"DROP TABLE IF EXISTS {_DELTA}",
            f"CREATE TEMPORARY TABLE {_DELTA} AS SELECT row_number() OVER (ORDER BY i.id) "
            "AS seq, i.id AS item_id, GREATEST(s.n - i.rating_count, 0) AS n, "
            "GREATEST(s.total - i.rating_sum, 0) AS total "
            f"FROM {item} i JOIN {_STATS} s ON s.item_id = i.id "
            "WHERE s.n > i.rating_count OR s.total > i.rating_sum",
        )
        self.apply_stats()

    def apply_stats(self) -> None:
        """The items' stats moved by what the swap measured (``_DELTA``), in item order, in
        transactions of about ``MERGE_SECONDS``. A crash in between leaves some items'
        stats behind the ratings: the same import run again swaps in the same table and
        measures (and writes) what is still missing."""
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE UNIQUE INDEX ON {_DELTA} (seq)")
            cursor.execute(f"SELECT count(*) FROM {_DELTA}")
            n = cursor.fetchone()[0]
        for start, stop in _timed_chunks(n, first=STATS_FIRST):
            self.apply_stats_batch(start, stop)

    @transaction.atomic
    def apply_stats_batch(self, start: int, stop: int) -> None:
        """The stats of the ``_DELTA`` rows start < seq <= stop, in one transaction."""
        item = self.q(Item._meta.db_table)
        self._exec(
            f"UPDATE {item} SET rating_count = {item}.rating_count + d.n, "
            f"rating_sum = {item}.rating_sum + d.total FROM {_DELTA} d "
            f"WHERE {item}.id = d.item_id AND d.seq > %s AND d.seq <= %s",
            params=[start, stop],
        )

    def merge_in_place(self) -> int:
        """Upsert the pairs into the live table, newer wins, in short transactions that
        each move the items' stats by what they changed."""
        rating, item = self.q(self.live), self.q(Item._meta.db_table)
        self.clear()
        with transaction.atomic():
            self._exec(
                f"CREATE TEMPORARY TABLE {_PAIRS} (seq bigserial PRIMARY KEY, u bigint NOT "
                "NULL, i bigint NOT NULL, score double precision NOT NULL, created "
                "timestamptz NOT NULL, updated timestamptz NOT NULL)"
            )
            self.copy(_PAIRS, report=False)  # seq numbers the rows in the pairs' order
            self._exec(f"ANALYZE {_PAIRS}")
        chunk = f"(SELECT * FROM {_PAIRS} WHERE seq > %s AND seq <= %s)"
        stats = (
            f"UPDATE {item} SET rating_count = rating_count + d.n, "
            "rating_sum = rating_sum + d.s FROM (SELECT p.i, COUNT(*) FILTER (WHERE l.id IS "
            "NULL) AS n, SUM(CASE WHEN l.id IS NULL THEN p.score WHEN p.updated >= l.updated "
            f"THEN p.score - l.score ELSE 0 END) AS s FROM {chunk} p LEFT JOIN {rating} l "
            "ON l.user_id = p.u AND l.item_id = p.i GROUP BY p.i) d "
            f"WHERE {item}.id = d.i"
        )
        upsert = (
            f"INSERT INTO {rating} (user_id, item_id, score, created, updated) "
            f"SELECT u, i, score, created, updated FROM {chunk} c "
            "ON CONFLICT (user_id, item_id) DO UPDATE SET score = excluded.score, "
            f"updated = excluded.updated WHERE excluded.updated >= {rating}.updated"
        )
        written, n = 0, len(self.pairs)
        for start, stop in _timed_chunks(n):
            with transaction.atomic(), connection.cursor() as cursor:
                # The chunk's live rows locked first, so the stats and the upsert see the
                # same ones.
                cursor.execute(
                    f"SELECT 1 FROM {rating} l JOIN {chunk} p ON l.user_id = p.u "
                    "AND l.item_id = p.i FOR UPDATE OF l",
                    [start, stop],
                )
                cursor.execute(stats, [start, stop])
                cursor.execute(upsert, [start, stop])
                written += max(cursor.rowcount, 0)
            if self.merge_progress is not None:
                self.merge_progress(stop, n)
        self._exec(f"DROP TABLE IF EXISTS {_PAIRS}")
        return written

    def reserve_ids(self) -> np.ndarray:
        """One id per pair from the live table's sequence, as the site's ids come, so the
        two never meet: a block taken in one step while no rating is being inserted (a
        nextval per pair took a third of the stage at 1M)."""
        n = len(self.pairs)
        if not n:
            return np.zeros(0, np.int64)

        def take() -> int:
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {self.q(self.live)} IN SHARE ROW EXCLUSIVE MODE")
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [self.live])
                sequence = cursor.fetchone()[0]
                cursor.execute("SELECT nextval(%s)", [sequence])
                first = cursor.fetchone()[0]
                cursor.execute("SELECT setval(%s, %s)", [sequence, first + n - 1])
                return first

        first = self.when_free(take)
        return np.arange(first, first + n, dtype=np.int64)

    def _exec(self, *statements: str, params=None) -> None:
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql, params)

    def clear(self) -> None:
        """Drop what an import that died left behind (the live table is untouched)."""
        self._exec(
            f"DROP TRIGGER IF EXISTS {_TRIGGER} ON {self.q(self.live)}",
            f"DROP FUNCTION IF EXISTS {_LOG_FN}()",
            f"DROP TABLE IF EXISTS {_LOG}, {_NEW}, {_PAIRS}, {_STATS}, {_DELTA}",
        )

    def copy(
        self, table: str, ids: np.ndarray | None = None, *, report: bool = True, freeze=False
    ) -> None:
        """The pairs (with ``ids``, if given) into ``table`` with one binary ``COPY``
        (``freeze``: rows written frozen, for a table made or emptied in this transaction)."""
        pairs, n = self.pairs, len(self.pairs)
        widths = {"id": 8, "u": 8, "i": 8}
        columns = "(u, i, score, created, updated)"
        if ids is not None:
            columns = "(id, user_id, item_id, score, created, updated)"
            with connection.cursor() as cursor:  # binary COPY takes each column's own width
                cursor.execute(
                    "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
                    "WHERE attrelid = %s::regclass AND attname IN ('id', 'user_id', 'item_id')",
                    [table],
                )
                names = {"id": "id", "user_id": "u", "item_id": "i"}
                widths.update({names[a]: 4 if t == "integer" else 8 for a, t in cursor.fetchall()})

        def binary(name, kind):  # a binary COPY field: its length, then its big-endian value
            return (name, [("len", ">i4"), ("value", f">{kind}")])

        layout = [("n", ">i2"), binary("u", f"i{widths['u']}"), binary("i", f"i{widths['i']}")]
        layout += [binary("s", "f8"), binary("c", "i8"), binary("d", "i8")]
        values = [
            ("u", pairs.user),
            ("i", pairs.item),
            ("s", pairs.score),
            ("c", pairs.created - _PG_EPOCH_US),
            ("d", pairs.updated - _PG_EPOCH_US),
        ]
        if ids is not None:
            layout.insert(1, binary("id", f"i{widths['id']}"))
            values.append(("id", ids))
        step = COPY_BLOCK_ROWS
        # Built and sent a block at a time: all the rows at once (73 bytes a pair) were
        # about a third of the import's peak memory.
        block = np.empty(min(n, step), layout)
        block["n"] = len(values)
        for name, _ in values:
            block[name]["len"] = block.dtype[name]["value"].itemsize
        with (
            connection.cursor() as cursor,
            cursor.copy(
                f"COPY {table} {columns} FROM STDIN (FORMAT BINARY{', FREEZE' if freeze else ''})"
            ) as copy,
        ):
            copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8))
            for start in range(0, n, step):
                rows = block[: min(n, start + step) - start]
                for name, column in values:
                    rows[name]["value"] = column[start : start + step]
                copy.write(rows.tobytes())
                if report and self.merge_progress is not None:
                    self.merge_progress(min(n, start + step), n)
            copy.write(b"\xff\xff")

    def track(self) -> None:
        """From here on, note each pair the site writes (in its own transaction)."""
        live = self.q(self.live)
        with transaction.atomic():
            self._exec(
                f"CREATE UNLOGGED TABLE {_LOG} (user_id bigint NOT NULL, item_id bigint NOT NULL)",
                f"CREATE FUNCTION {_LOG_FN}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF TG_OP <> 'INSERT' THEN "
                f"INSERT INTO {_LOG} VALUES (OLD.user_id, OLD.item_id); END IF; "
                "IF TG_OP <> 'DELETE' THEN "
                f"INSERT INTO {_LOG} VALUES (NEW.user_id, NEW.item_id); END IF; "
                "RETURN NULL; END $$",
                f"CREATE TRIGGER {_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {live} "
                f"FOR EACH ROW EXECUTE FUNCTION {_LOG_FN}()",
            )

    def _merged(self, live_rows: str) -> str:
        """SELECT of the live rows in ``live_rows`` (a FROM item aliased l) with the file's
        pair for each where it is at least as new."""
        wins = "(p.u IS NOT NULL AND p.updated >= l.updated)"
        return (
            f"SELECT l.id, l.user_id, l.item_id, CASE WHEN {wins} THEN p.score ELSE l.score END, "
            f"l.created, CASE WHEN {wins} THEN p.updated ELSE l.updated END "
            f"FROM {live_rows} LEFT JOIN {_PAIRS} p ON p.u = l.user_id AND p.i = l.item_id"
        )

    def build_rows(self) -> int:
        """The new table: live rows merged with the file's, then the file's new pairs, whose
        ids come from the live table's sequence (so they never meet the site's)."""
        live = self.q(self.live)
        columns = "(id, user_id, item_id, score, created, updated)"
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FROM {live} l JOIN {_PAIRS} p ON p.u = l.user_id "
                "AND p.i = l.item_id WHERE p.updated >= l.updated"
            )
            written = cursor.fetchone()[0]
            cursor.execute(f"INSERT INTO {_NEW} {columns} {self._merged(f'{live} l')}")
            cursor.execute(
                f"INSERT INTO {_NEW} {columns} SELECT nextval(pg_get_serial_sequence(%s, 'id')), "
                f"p.u, p.i, p.score, p.created, p.updated FROM {_PAIRS} p WHERE NOT EXISTS "
                f"(SELECT 1 FROM {live} l WHERE l.user_id = p.u AND l.item_id = p.i) "
                "ORDER BY p.u, p.i",
                [live],
            )
            written += cursor.rowcount
        if self.merge_progress is not None:
            self.merge_progress(len(self.pairs), len(self.pairs))
        return written

    def build_indexes(self, *, stats_from_pairs: bool = False) -> list[tuple[str, str, str]]:
        """The live table's indexes and constraints on the new table under temporary names,
        and the new table's item stats (``stats_from_pairs``: summed from the pairs, which
        are its rows, instead of a scan of it); returns (kind, temporary name, live name)
        for the swap to rename."""
        renames = []
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {_NEW}")
            cursor.execute(
                "SELECT c.relname, pg_get_indexdef(i.indexrelid), con.conname, con.contype "
                "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid "
                "AND con.contype IN ('p', 'u') WHERE i.indrelid = %s::regclass ORDER BY 1",
                [self.live],
            )
            indexes = cursor.fetchall()
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY 1",
                [self.live],
            )
            foreign = cursor.fetchall()
        for n, (name, definition) in enumerate(foreign):
            temporary = f"imp_rating_new_fk{n}"
            # NOT VALID first: adding a foreign key locks the referenced table against
            # writes, so the check of every row runs afterwards, under a weaker lock. Before
            # the indexes (each check is a scan of the table either way, 3-6 s at 10M under
            # load 10): a user or item deleted meanwhile fails the import before the builds.
            self._exec(f"ALTER TABLE {_NEW} ADD CONSTRAINT {temporary} {definition} NOT VALID")
            self._exec(f"ALTER TABLE {_NEW} VALIDATE CONSTRAINT {temporary}")
            renames.append(("constraint", temporary, name))
        self.clock.lap("constraints")
        head = re.compile(r"^(CREATE (?:UNIQUE )?INDEX) (\S+) ON (\S+) ")
        creates = [
            head.sub(rf"\1 imp_rating_new_idx{n} ON {_NEW} ", definition, count=1)
            for n, (_, definition, _, _) in enumerate(indexes)
        ]
        # The longest builds first, so the connections finish close together: the plain
        # index, whose rows come in random order (at 10M under load 10: (user, -updated)
        # 14-20 s; the (item, -updated) one, gone since, took 20-26 s), before the unique
        # ones on (id) and (user, item), which the pairs' order presorts (9-17 s each).
        longest_first = sorted(range(len(indexes)), key=lambda n: indexes[n][2] is not None)
        _pg_run_in_parallel([creates[n] for n in longest_first], PG_BUILD_CONNECTIONS)
        for n, (name, _, constraint, kind) in enumerate(indexes):
            temporary = f"imp_rating_new_idx{n}"
            if constraint:
                kind = "PRIMARY KEY" if kind == "p" else "UNIQUE"
                self._exec(
                    f"ALTER TABLE {_NEW} ADD CONSTRAINT {temporary} {kind} USING INDEX {temporary}"
                )
                renames.append(("constraint", temporary, constraint))
            else:
                renames.append(("index", temporary, name))
        if stats_from_pairs:
            ids, at = np.unique(self.pairs.item, return_inverse=True)
            counts = np.bincount(at, minlength=ids.size)
            sums = np.bincount(at, weights=self.pairs.score, minlength=ids.size)
            self._exec(
                f"CREATE TEMPORARY TABLE {_STATS} (item_id bigint, n bigint, "
                "total double precision)"
            )
            with connection.cursor() as cursor, cursor.copy(f"COPY {_STATS} FROM STDIN") as copy:
                for row in zip(ids.tolist(), counts.tolist(), sums.tolist(), strict=True):
                    copy.write_row(row)
        else:
            self._exec(
                f"CREATE TEMPORARY TABLE {_STATS} AS SELECT item_id, COUNT(*) AS n, "
                f"SUM(score) AS total FROM {_NEW} GROUP BY item_id"
            )
        self._exec(f"CREATE UNIQUE INDEX ON {_STATS} (item_id)")
        return renames

    def when_free(self, step: Callable):
        """``step()`` in a transaction that waits at most ``SWAP_LOCK_SECONDS`` for a lock
        on the live table, tried again until it gets it: a site write queued behind a
        waiting lock would wait as long."""
        for attempt in range(SWAP_ATTEMPTS):
            try:
                with transaction.atomic():
                    self._exec(f"SET LOCAL lock_timeout = '{int(SWAP_LOCK_SECONDS * 1000)}ms'")
                    return step()
            except OperationalError as error:
                if getattr(error.__cause__, "sqlstate", None) != "55P03" or (
                    attempt == SWAP_ATTEMPTS - 1
                ):
                    raise
                time.sleep(SWAP_LOCK_SECONDS)

    def swap(self, renames: list[tuple[str, str, str]]) -> None:
        """Re-apply the pairs the site wrote meanwhile, then put the new table in place."""
        live, q = self.q(self.live), self.q
        logged = f"(SELECT DISTINCT user_id, item_id FROM {_LOG})"
        with connection.cursor() as cursor:
            # Deferred foreign-key checks pending in this transaction would forbid the
            # renames below; run them now (every constraint here is INITIALLY DEFERRED).
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"LOCK TABLE {live} IN EXCLUSIVE MODE")  # readers go on
            # Each pair the site wrote: its live row, or the new table's where that is at
            # least as new (the file's line); gone where the site removed it.
            cursor.execute(
                f"CREATE TEMPORARY TABLE imp_rating_reapply AS SELECT l.id, l.user_id, "
                "l.item_id, CASE WHEN n.updated >= l.updated THEN n.score ELSE l.score END "
                "AS score, l.created, CASE WHEN n.updated >= l.updated THEN n.updated "
                f"ELSE l.updated END AS updated FROM {live} l JOIN {logged} g "
                "ON g.user_id = l.user_id AND g.item_id = l.item_id "
                f"LEFT JOIN {_NEW} n ON n.user_id = l.user_id AND n.item_id = l.item_id"
            )
            # The items' stats as the new table will have them: counted before, moved here
            # by what the re-applied pairs change (their rows in the new table out, the
            # re-applied ones in). Recounting the items the site touched instead read all
            # their ratings: with a rating every 0.1 s during a 10M import, ~1,000 items,
            # and the swap took 4.4 s under load 12. No rating changes while the lock is
            # held, so none of the site's own stat updates can fall in between.
            cursor.execute(
                "CREATE TEMPORARY TABLE imp_stats_fix AS SELECT item_id, SUM(n) AS n, "
                "SUM(total) AS total FROM (SELECT n.item_id, -1 AS n, -n.score AS total "
                f"FROM {_NEW} n JOIN {logged} g ON n.user_id = g.user_id "
                "AND n.item_id = g.item_id UNION ALL SELECT item_id, 1, score "
                "FROM imp_rating_reapply) d GROUP BY item_id"
            )
            cursor.execute(
                f"INSERT INTO {_STATS} SELECT f.item_id, 0, 0 FROM imp_stats_fix f "
                f"WHERE NOT EXISTS (SELECT 1 FROM {_STATS} s WHERE s.item_id = f.item_id)"
            )
            cursor.execute(
                f"UPDATE {_STATS} s SET n = s.n + f.n, total = s.total + f.total "
                "FROM imp_stats_fix f WHERE s.item_id = f.item_id"
            )
            cursor.execute(
                f"DELETE FROM {_NEW} n USING {logged} g "
                "WHERE n.user_id = g.user_id AND n.item_id = g.item_id"
            )
            cursor.execute(
                f"INSERT INTO {_NEW} (id, user_id, item_id, score, created, updated) "
                "SELECT id, user_id, item_id, score, created, updated FROM imp_rating_reapply"
            )
            cursor.execute("DROP TABLE imp_rating_reapply, imp_stats_fix")
            # What each item's stats must move by, read here (a scan of the items, not a
            # write of them) and written after the swap in short transactions
            # (``apply_stats``): increments, as the site's own writes are, so the two add
            # up whatever order they come in. Writing them here made this transaction, and
            # the site's writes queued behind its lock, last 4.7-4.8 s at 25M: on a first
            # import every item's count crosses a power of two, its ``popularity_band``
            # changes and each update rewrites all of the item's index entries.
            item = q(Item._meta.db_table)
            cursor.execute(f"DROP TABLE IF EXISTS {_DELTA}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {_DELTA} AS SELECT row_number() OVER (ORDER BY i.id) "
                "AS seq, i.id AS item_id, COALESCE(s.n, 0) - i.rating_count AS n, "
                "COALESCE(s.total, 0) - i.rating_sum AS total "
                f"FROM {item} i LEFT JOIN {_STATS} s ON s.item_id = i.id "
                "WHERE i.rating_count <> COALESCE(s.n, 0) OR i.rating_sum <> COALESCE(s.total, 0)"
            )
            cursor.execute(f"DROP TRIGGER {_TRIGGER} ON {live}")
            cursor.execute(f"DROP FUNCTION {_LOG_FN}()")
            cursor.execute(f"DROP TABLE {_LOG}")
            cursor.execute(
                "SELECT pg_get_serial_sequence(%s, 'id'), pg_get_serial_sequence(%s, 'id')",
                [self.live, _NEW],
            )
            old_sequence, new_sequence = cursor.fetchone()
            cursor.execute(f"SELECT last_value, is_called FROM {old_sequence}")
            last, called = cursor.fetchone()
            cursor.execute("SELECT setval(%s, %s, %s)", [new_sequence, last, called])
            cursor.execute(f"DROP TABLE {live}")
            cursor.execute(f"ALTER TABLE {_NEW} RENAME TO {live}")
            for kind, temporary, name in renames:
                if kind == "index":
                    cursor.execute(f"ALTER INDEX {temporary} RENAME TO {q(name)}")
                else:
                    cursor.execute(f"ALTER TABLE {live} RENAME CONSTRAINT {temporary} TO {q(name)}")
            sequence_name = old_sequence.rpartition(".")[2].strip('"')
            cursor.execute(f"ALTER SEQUENCE {new_sequence} RENAME TO {q(sequence_name)}")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


class _ItemWriter:
    """Creates and updates the namespace's items; makes bare items for unknown ids."""

    def __init__(self, namespace: str):
        self.prefix = f"{namespace}:"
        self.known = self._namespace_items()
        self.created = 0

    def _namespace_items(self) -> dict[str, int]:
        """The namespace's items: external id -> primary key."""
        items = Item.objects.filter(external_id__startswith=self.prefix)
        return {key[len(self.prefix) :]: pk for key, pk in items.values_list("external_id", "pk")}

    def create_bare(self, external_ids: Iterable[str]) -> int:
        """Make an item titled "Item <id>" for each id not known yet; returns how many."""
        missing = sorted(ext for ext in external_ids if ext not in self.known)
        made = rows_insert(
            template=Item(title="", external_id=""),
            columns={
                "title": [f"Item {ext}" for ext in missing],
                "external_id": [self.prefix + ext for ext in missing],
            },
        )
        if made:
            self.known = self._namespace_items()
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
    names = [usernames.validate_generated(prefix + ext) for ext in external_ids]
    template = get_user_model()(username="", password=make_password(None))
    return rows_insert(template=template, columns={"username": names})


def rows_insert(*, template, columns: dict[str, list]) -> int:
    """Insert one row of ``template``'s model per position of the lists in ``columns``
    (attname -> values): those columns from the lists, every other one (but the primary
    key) as ``template`` would be saved on creation. Returns how many rows.

    In transactions of about ``MERGE_SECONDS``: ``COPY`` on PostgreSQL, one prepared
    ``executemany`` on SQLite. No model signals are sent (as with ``bulk_create``). The ORM's
    ``bulk_create`` spent ~0.2 ms a row building each object's SQL values (6,000 users and
    4,000 items: 1.3 s at 1M ratings; 224k at MovieLens-25M size).
    """
    model = type(template)
    n = len(next(iter(columns.values()), []))
    # Generated columns (Item.popularity_band) are the database's to write.
    fields = [f for f in model._meta.concrete_fields if not f.primary_key and not f.generated]
    fixed = {
        f.attname: f.get_db_prep_save(f.pre_save(template, add=True), connection)
        for f in fields
        if f.attname not in columns
    }
    names = [f.attname for f in fields]
    q = connection.ops.quote_name
    target = f"{q(model._meta.db_table)} ({', '.join(q(f.column) for f in fields)})"
    made = 0
    for start, stop in _timed_chunks(n, first=CHUNK_SIZE):
        size = stop - start
        lists = (columns[a][start:stop] if a in columns else [fixed[a]] * size for a in names)
        rows = zip(*lists, strict=True)
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.copy(f"COPY {target} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(names))
                cursor.executemany(f"INSERT INTO {target} VALUES ({marks})", list(rows))
        made += stop - start
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
