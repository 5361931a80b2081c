"""Readers for the rating files the importer understands.

Each format yields ``ItemRecord`` and ``RatingRecord`` objects one line at a time, so
memory does not grow with the file. A malformed item line raises ``BadLine`` naming the
file, the line number and the reason; a malformed rating line is yielded as a
``BadLine`` instead, so the caller can stop or skip it and read on.
"""

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from catalog.models import ALLOWED_SCORES, is_allowed_score

# MovieLens 100k's genre flags, in column order, for when u.genre is absent.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip

_YEAR_SUFFIX = re.compile(r"\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_ARTICLE_SUFFIX = re.compile(
    r"^(?P<rest>.+), (?P<article>The|A|An|Les|La|Le|L'|Il|Das|Der|Die|El)$"
)


class BadLine(ValueError):
    def __init__(self, path: Path, line_no: int, reason: str):
        super().__init__(f"{path}, line {line_no}: {reason}")
        self.path = path
        self.line_no = line_no
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ItemRecord:
    external_id: str
    title: str
    year: int | None = None
    genres: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class RatingRecord:
    line_no: int
    user: str
    item: str
    score: float
    timestamp: datetime | None


def split_title(raw: str) -> tuple[str, int | None]:
    """'Usual Suspects, The (1995)' -> ('The Usual Suspects', 1995)."""
    title, year = raw.strip(), None
    match = _YEAR_SUFFIX.search(title)
    if match:
        year = int(match.group(1))
        title = title[: match.start()].rstrip()
    article = _ARTICLE_SUFFIX.match(title)
    if article:
        sep = "" if article["article"].endswith("'") else " "
        title = f"{article['article']}{sep}{article['rest']}"
    return title or raw.strip(), year


def _decode(raw: bytes) -> str:
    # MovieLens 1M is Latin-1, later releases UTF-8; try UTF-8 first for every line.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


# Progress is reported every this many bytes: tqdm's update costs more than a line's parsing.
_PROGRESS_BYTES = 1 << 20


def _lines(path: Path, progress=None) -> Iterator[tuple[int, str]]:
    """Yield (line number, text without newline), skipping blank lines."""
    pending = 0
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if progress is not None:
                pending += len(raw)
                if pending >= _PROGRESS_BYTES:
                    progress(pending)
                    pending = 0
            text = _decode(raw).rstrip("\r\n")
            if text.strip():
                yield line_no, text
    if progress is not None and pending:
        progress(pending)


# The usual spellings of each allowed score, looked up before the general parse.
_SCORE_TEXT = {
    text: score
    for score in ALLOWED_SCORES
    for text in {f"{score:g}", f"{score:.1f}", f"{score:.2f}"}
}
# The Unix times ``datetime`` can hold (years 1 to 9999).
_MIN_TS = int(datetime(1, 1, 1, tzinfo=UTC).timestamp())
_MAX_TS = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())


class RatingRow(NamedTuple):
    """One valid rating line, as cheap to make as a tuple: the importer's unit of work."""

    line_no: int
    user: str
    item: str
    score: float
    timestamp: int | None  # Unix seconds, None where the file has none


def _rating_rows(path, rows, n_expected) -> Iterator["RatingRow | BadLine"]:
    for line_no, fields in rows:
        try:
            yield _rating_row(path, line_no, fields, n_expected)
        except BadLine as error:
            yield error


def _rating_row(path, line_no, fields, n_expected) -> RatingRow:
    if len(fields) not in n_expected:
        expected = " or ".join(str(n) for n in sorted(n_expected))
        raise BadLine(path, line_no, f"expected {expected} fields, found {len(fields)}")
    user, item, raw_score = (value.strip() for value in fields[:3])
    if not user or not item:
        raise BadLine(path, line_no, "the user and item ids must not be empty")
    score = _SCORE_TEXT.get(raw_score)
    if score is None:
        try:
            score = float(raw_score)
        except ValueError:
            raise BadLine(path, line_no, f"score {raw_score!r} is not a number") from None
        if not is_allowed_score(score):
            raise BadLine(
                path,
                line_no,
                f"score {raw_score} is out of range (allowed: {ALLOWED_SCORES[0]:g} to "
                f"{ALLOWED_SCORES[-1]:g} in steps of 0.5)",
            )
    timestamp = None
    if len(fields) > 3 and fields[3].strip():
        raw_ts = fields[3].strip()
        try:
            timestamp = int(raw_ts)
        except ValueError:
            timestamp = None
        if timestamp is None or not _MIN_TS <= timestamp <= _MAX_TS:
            raise BadLine(path, line_no, f"timestamp {raw_ts!r} is not a Unix time")
    return RatingRow(line_no, user, item, score, timestamp)


def _records(rows: Iterator["RatingRow | BadLine"]) -> Iterator["RatingRecord | BadLine"]:
    for row in rows:
        if isinstance(row, BadLine):
            yield row
        else:
            when = None if row.timestamp is None else datetime.fromtimestamp(row.timestamp, UTC)
            yield RatingRecord(row.line_no, row.user, row.item, row.score, when)


class Format:
    """A file layout: where the ratings and items are and how to read them."""

    name: str
    label: str

    def __init__(self, ratings_path: Path, items_path: Path | None):
        self.ratings_path = ratings_path
        self.items_path = items_path

    @staticmethod
    def recognises(ratings: Path) -> bool:
        """Whether detection may take ``ratings`` (a file of this layout's name) as this format."""
        return True

    def items(self) -> Iterator[ItemRecord]:
        return iter(())

    def ratings(self, progress=None) -> Iterator[RatingRecord | BadLine]:
        """Each rating line as a ``RatingRecord`` (or the ``BadLine`` it is)."""
        return _records(self.rating_rows(progress))

    def rating_rows(self, progress=None) -> Iterator[RatingRow | BadLine]:
        """Each rating line as a ``RatingRow`` (or the ``BadLine`` it is); the fast form."""
        raise NotImplementedError


class MovieLens100k(Format):
    name, label = "ml100k", "MovieLens 100k (u.data + u.item)"

    def items(self) -> Iterator[ItemRecord]:
        if self.items_path is None:
            return
        genre_names = self._genre_names()
        for line_no, text in _lines(self.items_path):
            fields = text.split("|")
            if len(fields) != 5 + len(genre_names):
                raise BadLine(
                    self.items_path,
                    line_no,
                    f"expected {5 + len(genre_names)} fields, found {len(fields)}",
                )
            title, year = split_title(fields[1])
            flags = fields[5:]
            if any(flag not in ("0", "1") for flag in flags):
                raise BadLine(self.items_path, line_no, "genre flags must be 0 or 1")
            genres = tuple(
                name for name, flag in zip(genre_names, flags, strict=True) if flag == "1"
            )
            yield ItemRecord(fields[0].strip(), title, year, genres)

    def _genre_names(self) -> tuple[str, ...]:
        genre_file = self.ratings_path.parent / "u.genre"
        if not genre_file.exists():
            return ML100K_GENRES
        pairs = []
        for line_no, text in _lines(genre_file):
            name, _, index = text.partition("|")
            if not index.strip().isdigit():
                raise BadLine(genre_file, line_no, "expected 'name|index'")
            pairs.append((int(index), name.strip()))
        return tuple(name for _, name in sorted(pairs))

    def rating_rows(self, progress=None) -> Iterator[RatingRow | BadLine]:
        rows = ((n, text.split("\t")) for n, text in _lines(self.ratings_path, progress))
        return _rating_rows(self.ratings_path, rows, {4})


class MovieLensDat(Format):
    name, label = "ml1m", "MovieLens 1M/10M (ratings.dat + movies.dat)"

    def items(self) -> Iterator[ItemRecord]:
        if self.items_path is None:
            return
        for line_no, text in _lines(self.items_path):
            fields = text.split("::")
            if len(fields) != 3:
                raise BadLine(self.items_path, line_no, f"expected 3 fields, found {len(fields)}")
            title, year = split_title(fields[1])
            yield ItemRecord(fields[0].strip(), title, year, _split_genres(fields[2]))

    def rating_rows(self, progress=None) -> Iterator[RatingRow | BadLine]:
        rows = ((n, text.split("::")) for n, text in _lines(self.ratings_path, progress))
        return _rating_rows(self.ratings_path, rows, {4})


class MovieLensCsv(Format):
    name, label = "mllatest", "MovieLens latest/20M/25M (ratings.csv + movies.csv)"

    @staticmethod
    def recognises(ratings: Path) -> bool:
        # Any CSV may be called ratings.csv; MovieLens' own starts with its header.
        with ratings.open("rb") as handle:
            return handle.readline().startswith(b"userId,")

    def items(self) -> Iterator[ItemRecord]:
        if self.items_path is None:
            return
        for line_no, fields in _csv_rows(self.items_path, header="movieId"):
            if len(fields) != 3:
                raise BadLine(self.items_path, line_no, f"expected 3 fields, found {len(fields)}")
            title, year = split_title(fields[1])
            yield ItemRecord(fields[0].strip(), title, year, _split_genres(fields[2]))

    def rating_rows(self, progress=None) -> Iterator[RatingRow | BadLine]:
        rows = _csv_rows(self.ratings_path, header="userId", progress=progress)
        return _rating_rows(self.ratings_path, rows, {4})


class PlainCsv(Format):
    name, label = "csv", "CSV user,item,rating[,timestamp]"

    def rating_rows(self, progress=None) -> Iterator[RatingRow | BadLine]:
        rows = _csv_rows(self.ratings_path, header="user", progress=progress)
        return _rating_rows(self.ratings_path, rows, {3, 4})


def _split_genres(raw: str) -> tuple[str, ...]:
    return tuple(
        name.strip()
        for name in raw.split("|")
        if name.strip() and name.strip() != "(no genres listed)"
    )


def _csv_rows(path: Path, *, header: str, progress=None) -> Iterator[tuple[int, list[str]]]:
    """Rows of a CSV file with line numbers; a first row starting with ``header`` is skipped."""
    for line_no, text in _lines(path, progress):
        # A line without quotes splits as the csv module would split it, 10x faster.
        fields = next(csv.reader(io.StringIO(text))) if '"' in text else text.split(",")
        if line_no == 1 and fields and fields[0].strip().lower() == header.lower():
            continue
        yield line_no, fields


FORMATS = {cls.name: cls for cls in (MovieLens100k, MovieLensDat, MovieLensCsv, PlainCsv)}

# (format, ratings file name, items file name) in the order detection tries them.
_LAYOUTS = (
    (MovieLens100k, "u.data", "u.item"),
    (MovieLensDat, "ratings.dat", "movies.dat"),
    (MovieLensCsv, "ratings.csv", "movies.csv"),
)


def open_source(path: Path, format_name: str | None = None) -> Format:
    """Find the format of ``path`` (a data folder or a ratings file), or use the named one.

    Raises ValueError with a readable reason when the path cannot be read as any format.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    if format_name is not None and format_name not in FORMATS:
        raise ValueError(f"unknown format {format_name!r}; use one of {sorted(FORMATS)}")
    for cls, ratings_name, items_name in _LAYOUTS:
        if format_name not in (None, cls.name):
            continue
        if path.is_file():
            # A named format reads any file of its layout, e.g. MovieLens' u1.base.
            ratings = path if path.name == ratings_name or format_name == cls.name else None
        else:
            ratings = path / ratings_name if (path / ratings_name).is_file() else None
        if ratings is not None and (format_name or cls.recognises(ratings)):
            items = ratings.parent / items_name
            return cls(ratings, items if items.is_file() else None)
    if path.is_file() and format_name in (None, "csv"):
        return PlainCsv(path, None)
    wanted = FORMATS[format_name].label if format_name else "any known format"
    raise ValueError(f"{path} does not look like {wanted}")
