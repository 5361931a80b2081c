"""Reading ratings files: MovieLens 100k (tab separated), CSV and .npz.

The MovieLens files are never copied into the repository (licence); they are read from
``$RECSITE_ML100K`` or ``../shared/data/ml-100k`` relative to the repository root.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "ItemInfo",
    "UserInfo",
    "default_ml100k_dir",
    "read_items_csv",
    "read_ml100k_item_info",
    "read_ml100k_items",
    "read_ml100k_timestamps",
    "read_ml100k_users",
    "read_ratings",
]

REPO_ROOT = Path(__file__).resolve().parents[2]


def default_ml100k_dir() -> Path:
    """``$RECSITE_ML100K`` if set, else ``<repo>/../shared/data/ml-100k``."""
    env = os.environ.get("RECSITE_ML100K")
    return Path(env) if env else (REPO_ROOT / ".." / "shared" / "data" / "ml-100k").resolve()


def read_ratings(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user int64, item int64, rating float64) arrays from a ratings file.

    Accepts MovieLens ``u.data``-style tab-separated files, CSV ``user,item,rating[,ts]``
    (a non-numeric header line is skipped) and ``.npz`` with arrays ``user``, ``item``,
    ``rating``.
    """
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return (
                z["user"].astype(np.int64),
                z["item"].astype(np.int64),
                z["rating"].astype(np.float64),
            )
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    delim = "\t" if "\t" in first else ("," if "," in first else None)
    head = first.split(delim)[0].strip() if first else ""
    skip = 0 if _is_number(head) else 1
    arr = np.loadtxt(path, delimiter=delim, skiprows=skip, usecols=(0, 1, 2), ndmin=2)
    return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2].astype(np.float64)


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _pipe_rows(path, min_fields):
    """Fields of each ``|``-separated line of a MovieLens 100k file (latin-1), skipping
    lines with fewer than ``min_fields`` fields."""
    with open(path, encoding="latin-1") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("|")
            if len(parts) >= min_fields:
                yield parts


def read_ml100k_items(data_dir) -> tuple[np.ndarray, np.ndarray]:
    """(item ids int64 (n,), genre flags bool (n, 19)) from ``u.item``."""
    ids, flags = [], []
    for parts in _pipe_rows(Path(data_dir) / "u.item", 6):
        ids.append(int(parts[0]))
        flags.append([p == "1" for p in parts[5:]])
    return np.asarray(ids, dtype=np.int64), np.asarray(flags, dtype=bool)


# -- side information --------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ItemInfo:
    """Item side information aligned by row: what content models may use for cold items.

    Attributes:
        item_ids: int64 (n,) external item ids, sorted ascending.
        titles: list of n titles without the trailing "(year)".
        years: float64 (n,) release year, NaN where unknown.
        genres: list of n lists of genre names.
        tags: list of n lists of free-text tags (empty where the data has none).
    """

    item_ids: np.ndarray
    titles: list
    years: np.ndarray
    genres: list
    tags: list

    def subset(self, item_ids) -> ItemInfo:
        """Rows for ``item_ids`` (external ids) in that order; unknown ids get empty info."""
        pos = {int(x): k for k, x in enumerate(self.item_ids.tolist())}
        idx = [pos.get(int(x), -1) for x in np.asarray(item_ids).tolist()]

        def pick(seq, empty):
            return [seq[k] if k >= 0 else empty for k in idx]

        return ItemInfo(
            item_ids=np.asarray(item_ids, dtype=np.int64),
            titles=pick(self.titles, ""),
            years=np.asarray(pick(self.years.tolist(), np.nan), dtype=np.float64),
            genres=pick(self.genres, []),
            tags=pick(self.tags, []),
        )


_YEAR = re.compile(r"\((\d{4})\)\s*$")


def _split_title(title: str) -> tuple[str, float]:
    m = _YEAR.search(title.strip())
    if not m:
        return title.strip(), np.nan
    return title[: m.start()].strip(), float(m.group(1))


def read_ml100k_item_info(data_dir) -> ItemInfo:
    """Titles, years (from the title, else the release date) and genres from ``u.item``."""
    data_dir = Path(data_dir)
    names = [parts[0] for parts in _pipe_rows(data_dir / "u.genre", 2)]
    ids, titles, years, genres = [], [], [], []
    for parts in _pipe_rows(data_dir / "u.item", 6):
        title, year = _split_title(parts[1])
        if np.isnan(year) and parts[2][-4:].isdigit():
            year = float(parts[2][-4:])
        ids.append(int(parts[0]))
        titles.append(title)
        years.append(year)
        flags = parts[5:]
        genres.append([n for n, f in zip(names, flags, strict=False) if f == "1" and n])
    order = np.argsort(ids, kind="stable")
    return ItemInfo(
        item_ids=np.asarray(ids, dtype=np.int64)[order],
        titles=[titles[k] for k in order],
        years=np.asarray(years, dtype=np.float64)[order],
        genres=[[g for g in genres[k] if g != "unknown"] for k in order],
        tags=[[] for _ in order],
    )


def read_items_csv(path) -> ItemInfo:
    """Item side information from a CSV with a header.

    The header must name an item id column (``item``, ``item_id``, ``itemId``, ``movieId``
    or ``id``) and ``genres`` (pipe-separated, as in MovieLens ``movies.csv``); ``title``
    (a trailing "(year)" becomes the year), ``year`` and ``tags`` (pipe-separated) are
    used when present. Raises ValueError naming what is missing.
    """
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.DictReader(fh)
        cols = {c.strip().lower(): c for c in (reader.fieldnames or [])}
        id_col = next(
            (cols[c] for c in ("item", "item_id", "itemid", "movieid", "id") if c in cols), None
        )
        if id_col is None or "genres" not in cols:
            raise ValueError(
                f"{path}: the header must name an item id column (item, item_id, movieId, id)"
                f" and 'genres'; found {reader.fieldnames}"
            )
        ids, titles, years, genres, tags = [], [], [], [], []
        for n, row in enumerate(reader, start=2):
            try:
                ids.append(int(row[id_col]))
            except (TypeError, ValueError):
                msg = f"{path}, line {n}: item id {row[id_col]!r} is not an integer"
                raise ValueError(msg) from None
            title, year = _split_title(row.get(cols.get("title", ""), "") or "")
            if "year" in cols and (row[cols["year"]] or "").strip():
                year = float(row[cols["year"]])
            g = (row[cols["genres"]] or "").split("|")
            titles.append(title)
            years.append(year)
            genres.append([x.strip() for x in g if x.strip() and x != "(no genres listed)"])
            t = (row.get(cols.get("tags", ""), "") or "").split("|")
            tags.append([x.strip().lower() for x in t if x.strip()])
    order = np.argsort(ids, kind="stable")
    return ItemInfo(
        item_ids=np.asarray(ids, dtype=np.int64)[order],
        titles=[titles[k] for k in order],
        years=np.asarray(years, dtype=np.float64)[order],
        genres=[genres[k] for k in order],
        tags=[tags[k] for k in order],
    )


@dataclass(frozen=True, eq=False)
class UserInfo:
    """User demographics as one-hot features: ``features`` float64 (n_users, n_features)."""

    user_ids: np.ndarray
    features: np.ndarray
    names: list


def read_ml100k_users(data_dir) -> UserInfo:
    """Age band, gender and occupation from ``u.user`` as one-hot columns."""
    ids, rows = [], []
    for p in _pipe_rows(Path(data_dir) / "u.user", 4):
        ids.append(int(p[0]))
        band = next(b for b in (18, 25, 35, 45, 50, 56, 200) if int(p[1]) < b)
        rows.append((f"age<{band}", f"gender={p[2]}", f"occupation={p[3]}"))
    names = sorted({x for r in rows for x in r})
    col = {n: k for k, n in enumerate(names)}
    feats = np.zeros((len(ids), len(names)))
    for k, r in enumerate(rows):
        feats[k, [col[x] for x in r]] = 1.0
    order = np.argsort(ids, kind="stable")
    return UserInfo(np.asarray(ids, dtype=np.int64)[order], feats[order], names)


def read_ml100k_timestamps(data_dir) -> tuple[np.ndarray, ...]:
    """(user, item, rating, timestamp) int64/float64 arrays of ``u.data``."""
    arr = np.loadtxt(Path(data_dir) / "u.data", dtype=np.int64, ndmin=2)
    return arr[:, 0], arr[:, 1], arr[:, 2].astype(np.float64), arr[:, 3]
