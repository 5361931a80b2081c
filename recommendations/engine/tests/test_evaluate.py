"""Metrics by hand, and the evaluate command's output contract."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from recommendations.engine import evaluate
from recommendations.engine.metrics import mae, ranking_metrics, rmse

from .reference import random_ratings


def test_ranking_metrics_hand_computed():
    """User A: hits at ranks 1 and 3 of 3 relevant; user B: no hit."""
    top = np.array([[5, 1, 7, 2], [0, 1, 2, 3]])
    rel = [np.array([5, 7, 9]), np.array([8])]
    got = ranking_metrics(top, rel, n_items=10, at=4)
    d = [1 / math.log2(k + 1) for k in range(1, 5)]
    ndcg_a = (d[0] + d[2]) / (d[0] + d[1] + d[2])
    ap_a = (1 / 1 + 2 / 3) / 3
    assert got["precision@4"] == pytest.approx((2 / 4 + 0) / 2)
    assert got["recall@4"] == pytest.approx((2 / 3 + 0) / 2)
    assert got["ndcg@4"] == pytest.approx(ndcg_a / 2)
    assert got["map@4"] == pytest.approx(ap_a / 2)
    assert got["hit_rate@4"] == pytest.approx(0.5)
    assert got["coverage@4"] == pytest.approx(6 / 10)


def test_rmse_mae():
    assert rmse([1, 3], [2, 5]) == pytest.approx(math.sqrt(2.5))
    assert mae([1, 3], [2, 5]) == pytest.approx(1.5)


def _write(path, u, i, s):
    with open(path, "w") as fh:
        fh.write("user,item,rating,timestamp\n")
        for a, b, c in zip(u, i, s, strict=True):
            fh.write(f"{a},{b},{c},0\n")


def test_train_test_json_has_exact_keys(tmp_path, capsys):
    """--train/--test --json prints one object per configuration with exactly the issue's
    keys; rating configs fill rmse/mae, ranking configs the @10 metrics."""
    _, _, u, i, s = random_ratings(30, n_users=40, n_items=30, density=0.4)
    rng = np.random.default_rng(0)
    test = rng.random(u.size) < 0.2
    _write(tmp_path / "train.csv", u[~test], i[~test], s[~test])
    _write(tmp_path / "test.csv", u[test], i[test], s[test])
    code = evaluate.main(
        [
            "--train",
            str(tmp_path / "train.csv"),
            "--test",
            str(tmp_path / "test.csv"),
            "--config",
            "item-baseline-pb",
            "--config",
            "blend-bm25",
            "--config",
            "popular",
            "--json",
        ]
    )
    assert code == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [r["config"] for r in rows] == ["item-baseline-pb", "blend-bm25", "popular"]
    for r in rows:
        assert set(r) == set(evaluate.KEYS)
        assert r["fit_seconds"] >= 0
    assert 0 < rows[0]["rmse"] < 2 and rows[0]["ndcg@10"] is None
    assert rows[1]["rmse"] is None and 0 <= rows[1]["ndcg@10"] <= 1


def test_the_reranked_product_runs_on_any_split_without_times_or_items(tmp_path, capsys):
    """product-rerank (engine/rerank.py) from plain --train/--test files: no item
    information, no rating times; its fit sees the train file only."""
    _, _, u, i, s = random_ratings(32, n_users=60, n_items=40, density=0.4)
    test = np.random.default_rng(1).random(u.size) < 0.2
    _write(tmp_path / "train.csv", u[~test], i[~test], s[~test])
    _write(tmp_path / "test.csv", u[test], i[test], s[test])
    args = ["--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv")]
    assert evaluate.main([*args, "--config", "product-rerank", "--json"]) == 0
    (row,) = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert row["config"] == "product-rerank" and 0 < row["ndcg@10"] <= 1


def test_table_output_is_readable(tmp_path, capsys):
    _, _, u, i, s = random_ratings(31, n_users=30, n_items=20, density=0.4)
    _write(tmp_path / "a.csv", u[::2], i[::2], s[::2])
    _write(tmp_path / "b.csv", u[1::2], i[1::2], s[1::2])
    evaluate.main(
        [
            "--train",
            str(tmp_path / "a.csv"),
            "--test",
            str(tmp_path / "b.csv"),
            "--config",
            "item-bm25",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["protocol", "config"] and "ndcg@10" in out[0]
    assert out[2].split()[:2] == ["split", "item-bm25"]


def test_missing_data_dir_is_a_clear_error(tmp_path, capsys):
    assert evaluate.main(["--data", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
