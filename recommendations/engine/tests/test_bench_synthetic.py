"""The synthetic generator's shape and the bench command's output contract (tiny data)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recommendations.engine import bench
from recommendations.engine.data import read_ratings
from recommendations.engine.synthetic import generate


def test_generator_shape_is_movielens_like():
    """Exact count, >= 20 ratings per user, no duplicate pairs, ratings 1..5, skewed items,
    deterministic for a seed."""
    u, i, r = generate(60_000, 1_000, 800, seed=3)
    assert u.size == 60_000
    assert np.bincount(u).min() >= 20
    assert np.unique(u.astype(np.int64) * 800 + i).size == u.size
    assert set(np.unique(r).tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    pop = np.sort(np.bincount(i, minlength=800))[::-1]
    assert pop[:80].sum() > 0.2 * u.size  # top 10% of items: over twice a uniform share
    u2, i2, r2 = generate(60_000, 1_000, 800, seed=3)
    assert np.array_equal(u, u2) and np.array_equal(i, i2) and np.array_equal(r, r2)


def test_npz_and_csv_round_trip(tmp_path):
    u, i, r = generate(30_000, 500, 300, seed=1)
    np.savez(tmp_path / "x.npz", user=u, item=i, rating=r)
    u2, i2, r2 = read_ratings(tmp_path / "x.npz")
    assert np.array_equal(u, u2) and np.array_equal(i, i2) and np.allclose(r, r2)


def test_bench_json_on_a_ratings_file(tmp_path, capsys):
    """--data FILE --json prints one object per direction with times and peak memory of
    ours and of implicit (when installed)."""
    pytest.importorskip("implicit", reason="implicit (dev dependency) missing")
    u, i, r = generate(20_000, 300, 200, seed=2)
    path = tmp_path / "ratings.csv"
    with open(path, "w") as fh:
        fh.write("user,item,rating\n")
        for a, b, c in zip(u, i, r, strict=True):
            fh.write(f"{a},{b},{c}\n")
    assert bench.main(["--data", str(path), "--json", "--k", "10"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [x["kind"] for x in rows] == ["item", "user"]
    for row in rows:
        assert row["nnz"] == u.size
        assert row["ours_seconds"] > 0 and row["implicit_seconds"] > 0
        assert 0 < row["ours_peak_gib"] < 4 and row["ratio"] > 0
    table = bench.format_table(rows)
    assert "ours/implicit" in table.splitlines()[0]
