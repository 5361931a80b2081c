"""Bulk loading of rating files into the catalogue, all or nothing.

The whole import runs in one transaction: a bad line (unless skipped) rolls back
everything the import wrote. Ratings are upserted in chunks with one statement per
chunk; when a user and item pair is already rated, the newer rating wins (by the file's
timestamp, or the later line when the file has none).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts import usernames
from catalog.importers.formats import BadLine, Format, ItemRecord, RatingRecord
from catalog.models import Genre, Item, Rating
from catalog.services import item_stats_refresh

CHUNK_SIZE = 5000
MAX_REPORTED_SKIPS = 20


@dataclass
class ImportReport:
    format: str
    items_created: int = 0
    users_created: int = 0
    ratings_read: int = 0
    ratings_written: int = 0
    skipped: list[str] = field(default_factory=list)
    skipped_count: int = 0

    def skip(self, error: BadLine) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_REPORTED_SKIPS:
            self.skipped.append(str(error))


class _IdMap:
    """External id -> primary key for the users or items of one namespace, made on demand."""

    def __init__(self, known: dict[str, int], create: Callable[[list[str]], dict[str, int]]):
        self.known = known
        self.create = create
        self.created = 0

    def resolve(self, external_ids: Iterable[str]) -> dict[str, int]:
        missing = sorted({ext for ext in external_ids if ext not in self.known})
        if missing:
            made = self.create(missing)
            self.created += len(made)
            self.known.update(made)
        return self.known


def import_ratings(
    source: Format,
    *,
    namespace: str,
    skip_invalid: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import ``source`` into the database; raise ``BadLine`` (nothing kept) on a bad line.

    ``progress`` is called with the bytes of the ratings file read since its last call.
    """
    report = ImportReport(format=source.name)
    with transaction.atomic():
        items = _ItemWriter(namespace)
        items.write(source.items())
        users = _user_map(namespace)
        now = timezone.now()
        chunk: list[RatingRecord] = []
        for record in source.ratings(progress):
            if isinstance(record, BadLine):
                if not skip_invalid:
                    raise record
                report.skip(record)
                continue
            chunk.append(record)
            if len(chunk) >= CHUNK_SIZE:
                report.ratings_written += _write_chunk(chunk, users, items, now)
                report.ratings_read += len(chunk)
                chunk = []
        if chunk:
            report.ratings_written += _write_chunk(chunk, users, items, now)
            report.ratings_read += len(chunk)
        item_ids = sorted(items.touched)
        for start in range(0, len(item_ids), 5000):
            item_stats_refresh(item_ids=item_ids[start : start + 5000])
        report.items_created = items.created
        report.users_created = users.created
    return report


class _ItemWriter:
    """Creates and updates the namespace's items; makes bare items for unknown ids."""

    def __init__(self, namespace: str):
        self.prefix = f"{namespace}:"
        known = dict(
            Item.objects.filter(external_id__startswith=self.prefix).values_list(
                "external_id", "pk"
            )
        )
        self.map = _IdMap({key[len(self.prefix) :]: pk for key, pk in known.items()}, self._bare)
        self.touched: set[int] = set()
        self.created = 0

    def _bare(self, external_ids: list[str]) -> dict[str, int]:
        made = Item.objects.bulk_create(
            Item(title=f"Item {ext}", external_id=self.prefix + ext) for ext in external_ids
        )
        self.created += len(made)
        return {item.external_id[len(self.prefix) :]: item.pk for item in made}

    def write(self, records: Iterable[ItemRecord]) -> None:
        batch: list[ItemRecord] = []
        for record in records:
            batch.append(record)
            if len(batch) >= CHUNK_SIZE:
                self._write_batch(batch)
                batch = []
        if batch:
            self._write_batch(batch)

    def _write_batch(self, batch: list[ItemRecord]) -> None:
        genres = _genre_map({name for record in batch for name in record.genres})
        new = [record for record in batch if record.external_id not in self.map.known]
        existing = [record for record in batch if record.external_id in self.map.known]
        made = Item.objects.bulk_create(
            Item(title=r.title, year=r.year, external_id=self.prefix + r.external_id) for r in new
        )
        self.created += len(made)
        for record, item in zip(new, made, strict=True):
            self.map.known[record.external_id] = item.pk
        if existing:
            rows = [
                Item(pk=self.map.known[r.external_id], title=r.title, year=r.year) for r in existing
            ]
            Item.objects.bulk_update(rows, ["title", "year"])
        links = Item.genres.through
        ids = [self.map.known[r.external_id] for r in batch]
        links.objects.filter(item_id__in=ids).delete()
        links.objects.bulk_create(
            links(item_id=self.map.known[r.external_id], genre_id=genres[name])
            for r in batch
            for name in dict.fromkeys(r.genres)
        )

    def resolve(self, external_ids: Iterable[str]) -> dict[str, int]:
        return self.map.resolve(external_ids)


def _genre_map(names: set[str]) -> dict[str, int]:
    known = dict(Genre.objects.filter(name__in=names).values_list("name", "pk"))
    for name in sorted(names - known.keys()):
        slug = slugify(name) or "genre"
        base, n = slug, 2
        while Genre.objects.filter(slug=slug).exists():
            slug, n = f"{base}-{n}", n + 1
        known[name] = Genre.objects.create(name=name, slug=slug).pk
    return known


def _user_map(namespace: str) -> _IdMap:
    User = get_user_model()
    prefix = f"{namespace}-"
    known = {
        username[len(prefix) :]: pk
        for username, pk in User.objects.filter(username__startswith=prefix).values_list(
            "username", "pk"
        )
    }
    unusable = make_password(None)

    def create(external_ids: list[str]) -> dict[str, int]:
        made = User.objects.bulk_create(
            User(username=usernames.validate_generated(prefix + ext), password=unusable)
            for ext in external_ids
        )
        return {user.username[len(prefix) :]: user.pk for user in made}

    return _IdMap(known, create)


def _write_chunk(chunk: list[RatingRecord], users: _IdMap, items: _ItemWriter, now: datetime):
    user_pk = users.resolve(record.user for record in chunk)
    item_pk = items.resolve(record.item for record in chunk)
    # Within a chunk keep one row per pair, the newest (ties: the later line), because
    # one statement cannot upsert the same row twice.
    newest: dict[tuple[int, int], tuple[datetime, float]] = {}
    for record in chunk:
        key = (user_pk[record.user], item_pk[record.item])
        when = record.timestamp or now
        if key not in newest or when >= newest[key][0]:
            newest[key] = (when, record.score)
    items.touched.update(item for _, item in newest)
    return ratings_bulk_upsert(newest)


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
