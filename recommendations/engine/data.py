"""Reading ratings files: MovieLens 100k (tab separated), CSV and .npz.

The MovieLens files are never copied into the repository (licence); they are read from
``$RECSITE_ML100K`` or ``../shared/data/ml-100k`` relative to the repository root.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["default_ml100k_dir", "read_ratings", "read_ml100k_items"]

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


def read_ml100k_items(data_dir) -> tuple[np.ndarray, np.ndarray]:
    """(item ids int64 (n,), genre flags bool (n, 19)) from ``u.item``."""
    ids, flags = [], []
    with open(Path(data_dir) / "u.item", encoding="latin-1") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("|")
            if len(parts) < 6:
                continue
            ids.append(int(parts[0]))
            flags.append([p == "1" for p in parts[5:]])
    return np.asarray(ids, dtype=np.int64), np.asarray(flags, dtype=bool)
