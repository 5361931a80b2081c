"""The vectorised reader of plain numeric rating files gives exactly what the row reader
gives, and declines (so the row reader reads and names the bad line) whatever it cannot
vouch for."""

import random

import numpy as np
import pytest

from catalog.importers import formats
from catalog.importers.formats import numeric_table, open_source, table_from_rows

FIELDS = ("user", "item", "score", "ts", "has_ts")


def _same(fast, slow):
    for name in FIELDS:
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
    assert (fast.users, fast.items) == (slow.users, slow.items)


@pytest.mark.parametrize("seed", range(40))
def test_the_vectorised_reader_equals_the_row_reader(tmp_path, seed, monkeypatch):
    rng = random.Random(seed)
    # Small blocks, so lines are carried over from one block to the next.
    monkeypatch.setattr(formats, "_BLOCK_BYTES", rng.choice([7, 64, 1 << 20]))
    lines = [
        f"{rng.randrange(300)},{rng.randrange(10 ** rng.randrange(1, 7))},"
        f"{rng.choice(['4', '4.5', '0.5', '5', '3.0', '1', '2.5'])},"
        f"{rng.choice(['', str(rng.randrange(10**10)), '0'])}"
        for _ in range(rng.randrange(1, 400))
    ]
    header = "user,item,rating,timestamp\n" if rng.random() < 0.5 else ""
    path = tmp_path / "r.csv"
    path.write_text(header + "\n".join(lines) + rng.choice(["", "\n"]))
    fast = numeric_table(path, sep=b",", header="user")
    assert fast is not None
    _same(fast, table_from_rows(open_source(path).rating_rows(), False))


def test_a_movielens_100k_file_is_read_vectorised(tmp_path):
    path = tmp_path / "u.data"
    path.write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t377\t1\t878887116\n")
    fast = numeric_table(path, sep=b"\t", header=None)
    assert fast is not None
    _same(fast, table_from_rows(open_source(path).rating_rows(), False))
    assert fast.users == ["196", "186"]


@pytest.mark.parametrize(
    "text",
    [
        "1,2,3\n",  # no timestamp field (the row reader allows it)
        "01,2,3,4\n",  # an id with a leading zero is another id than 1
        "1,2,3,4\n\n1,2,3,4\n",  # a blank line
        "1,2,3.3,4\n",  # a score out of the half steps
        "1,2,0,4\n",
        "1,2,4.50,4\n",  # an unusual spelling
        "1,2,3,4,5\n",
        '"1",2,3,4\n',
        "1,,3,4\n",
        "1,2,3, 4\n",
        "1,2,3,4\r\n",
        "1,2,3,-4\n",
        "1,2,3,99999999999999\n",  # past year 9999
    ],
)
def test_the_vectorised_reader_declines_what_it_cannot_vouch_for(tmp_path, text):
    path = tmp_path / "r.csv"
    path.write_text(text)
    assert numeric_table(path, sep=b",", header="user") is None


def test_a_declined_file_is_read_by_the_row_reader_with_progress_counted_once(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\n" + "1,2,3,4\n" * 50 + "1,2,3\n")
    seen = []
    table = open_source(path).rating_table(seen.append)
    assert len(table) == 51
    assert sum(seen) == path.stat().st_size
