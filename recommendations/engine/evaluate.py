"""Offline evaluation on MovieLens 100k: ``python -m recommendations.engine.evaluate``.

Protocols:
  ``ml100k-folds``  rating prediction: train on each official ``uN.base``, test on
                    ``uN.test`` (N = 1..5); mean RMSE / MAE over the folds.
  ``ml100k-ua``     ranking: train on ``ua.base``, test on ``ua.test``; relevant = test
                    rating >= 4; candidates = every catalogue item (``u.item``) the user did
                    not rate in training; P/R/NDCG (binary gains)/MAP/hit rate at 10 averaged
                    over users with at least one relevant item; coverage = distinct items in
                    those users' top 10 over the catalogue size.
  ``--train F --test F``  both kinds of metrics on any split (catalogue = items in either).

``--json`` prints one JSON object per (protocol, configuration) line; otherwise a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data import default_ml100k_dir, read_ml100k_items, read_ratings
from .fallbacks import best_rated, most_popular
from .matrix import Baselines, RatingMatrix
from .metrics import mae, ranking_metrics, rmse
from .predict import predict_batch
from .similarity import compute_neighbours
from .topn import bm25_weight, recommend_batch

KEYS = (
    "protocol",
    "config",
    "rmse",
    "mae",
    "precision@10",
    "recall@10",
    "ndcg@10",
    "map@10",
    "hit_rate@10",
    "coverage@10",
    "fit_seconds",
)


# -- configurations ---------------------------------------------------------------------
@dataclass(frozen=True)
class KNNPart:
    kind: str = "item"
    measure: str = "pearson_baseline"
    shrinkage: float = 100.0
    lists: int = 0  # neighbours kept per row; 0 = all (exact Surprise-style neighbourhoods)
    k: int = 40
    method: str = "baseline"
    weight: float = 1.0


@dataclass(frozen=True)
class RatingConfig:
    """Weighted blend of k-NN predictors sharing one set of ALS baselines."""

    name: str
    parts: tuple
    description: str = ""
    baselines: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RankingConfig:
    """Neighbourhood-sum top-N (topn.recommend) or a fallback / predicted-rating order."""

    name: str
    description: str = ""
    item: dict | None = None  # dict(measure, k, shrinkage, bm25)
    user: dict | None = None
    user_weight: float = 0.7
    weighting: str = "rating"
    alpha: float = 1.0
    special: str | None = None  # "popular" | "best_rated" | "predicted"


ITEM_PB = KNNPart(kind="item")
USER_PB = KNNPart(kind="user")
RATING_CONFIGS = [
    RatingConfig(
        "item-baseline-pb",
        (ITEM_PB,),
        "KNNBaseline item pearson_baseline k=40 shrink 100, full lists (Surprise's best config)",
    ),
    RatingConfig("user-baseline-pb", (USER_PB,), "KNNBaseline user pearson_baseline k=40"),
    RatingConfig(
        "item-means-pearson",
        (KNNPart(kind="item", measure="pearson", shrinkage=0.0, method="means"),),
        "KNNWithMeans item pearson k=40, no shrinkage",
    ),
    RatingConfig(
        "blend-baseline-pb",
        (KNNPart(kind="item", weight=0.6), KNNPart(kind="user", weight=0.4)),
        "0.6 item + 0.4 user KNNBaseline pearson_baseline, full lists (best)",
    ),
    RatingConfig(
        "product-blend-K200",
        (KNNPart(kind="item", lists=200, weight=0.6), KNNPart(kind="user", lists=200, weight=0.4)),
        "as blend-baseline-pb from stored top-200 lists (what the web app can serve)",
    ),
]

BM25_ITEM = {"measure": "cosine", "k": 20, "shrinkage": 0.0, "bm25": True}
BM25_USER = {"measure": "cosine", "k": 50, "shrinkage": 0.0, "bm25": True}
RANKING_CONFIGS = [
    RankingConfig("popular", "most rated items (fallback)", special="popular"),
    RankingConfig("best-rated", "damped mean, damping 10 (fallback)", special="best_rated"),
    RankingConfig(
        "by-predicted-rating",
        "order by item KNNBaseline predicted rating (for contrast)",
        special="predicted",
    ),
    RankingConfig(
        "item-cosine",
        "item-item cosine K=20, rating-weighted sums",
        item=BM25_ITEM | {"bm25": False},
    ),
    RankingConfig("item-bm25", "item-item cosine on BM25 weights K=20", item=BM25_ITEM),
    RankingConfig("user-bm25", "user-user cosine on BM25 weights K=50", user=BM25_USER),
    RankingConfig(
        "blend-bm25",
        "0.7 user-user (BM25 cosine K=50) + 0.3 item-item (BM25 cosine K=20): product default",
        item=BM25_ITEM,
        user=BM25_USER,
        user_weight=0.7,
    ),
]
DEFAULT_RATING = ["item-baseline-pb", "blend-baseline-pb", "product-blend-K200"]
DEFAULT_RANKING = ["popular", "by-predicted-rating", "item-bm25", "user-bm25", "blend-bm25"]
ALL_CONFIGS = {c.name: c for c in RATING_CONFIGS + RANKING_CONFIGS}


# -- fitting and scoring ----------------------------------------------------------------
def fit_rating(cfg: RatingConfig, train: RatingMatrix):
    b = Baselines(**cfg.baselines).fit(train)
    models = []
    for p in cfg.parts:
        n = train.n_items if p.kind == "item" else train.n_users
        k_lists = max(1, n - 1) if p.lists == 0 else p.lists
        nb = compute_neighbours(
            train, kind=p.kind, measure=p.measure, k=k_lists, shrinkage=p.shrinkage, baselines=b
        )
        models.append((p, nb))
    return b, models


def predict_rating(train, fitted, users, items, clip):
    b, models = fitted
    total = np.zeros(users.size)
    for p, nb in models:
        est, _ = predict_batch(
            train, nb, users, items, method=p.method, k=p.k, baselines=b, clip=clip
        )
        total += p.weight * est
    return np.clip(total, clip[0], clip[1])


def top_n_for(cfg: RankingConfig, train: RatingMatrix, users: np.ndarray, n: int = 10):
    if cfg.special == "popular":
        top, _ = most_popular(train, n=train.n_items)
        return _per_user_unrated(train, users, top, n)
    if cfg.special == "best_rated":
        top, _ = best_rated(train, n=train.n_items)
        return _per_user_unrated(train, users, top, n)
    if cfg.special == "predicted":
        fitted = fit_rating(RATING_CONFIGS[0], train)
        items = np.arange(train.n_items)
        est = predict_rating(
            train, fitted, np.repeat(users, items.size), np.tile(items, users.size), (1.0, 5.0)
        ).reshape(users.size, items.size)
        rated = train.csr[users]
        est[rated.nonzero()] = -np.inf
        # stable sort: ties by lower item index
        return np.argsort(-est, axis=1, kind="stable")[:, :n]
    weighted = (
        bm25_weight(train) if any(p and p.get("bm25") for p in (cfg.item, cfg.user)) else None
    )

    def lists(part, kind):
        if not part:
            return None
        src = weighted if part.get("bm25") else train
        return compute_neighbours(
            src, kind=kind, measure=part["measure"], k=part["k"], shrinkage=part["shrinkage"]
        )

    item_nb, user_nb = lists(cfg.item, "item"), lists(cfg.user, "user")
    return recommend_batch(
        train,
        users,
        item_neighbours=item_nb,
        user_neighbours=user_nb,
        n=n,
        user_weight=cfg.user_weight,
        weighting=cfg.weighting,
        alpha=cfg.alpha,
    )


def _per_user_unrated(train, users, ranking, n):
    out = np.full((users.size, n), -1, dtype=np.int64)
    for t, u in enumerate(users):
        rated = train.user_row(u)[0]
        keep = ranking[~np.isin(ranking, rated)][:n]
        out[t, : keep.size] = keep
    return out


# -- protocols --------------------------------------------------------------------------
def _empty_row(protocol, name):
    return dict.fromkeys(KEYS) | {"protocol": protocol, "config": name}


def run_rating(protocol, splits, configs, clip=(1.0, 5.0)):
    rows = []
    for cfg in configs:
        errs, abs_errs, fit_s = [], [], []
        for train_arr, test_arr in splits:
            train = RatingMatrix.from_arrays(*train_arr)
            t0 = time.perf_counter()
            fitted = fit_rating(cfg, train)
            fit_s.append(time.perf_counter() - t0)
            u = train.user_indices(test_arr[0])
            i = train.item_indices(test_arr[1])
            est = predict_rating(train, fitted, u, i, clip)
            errs.append(rmse(est, test_arr[2]))
            abs_errs.append(mae(est, test_arr[2]))
        row = _empty_row(protocol, cfg.name)
        row.update(rmse=float(np.mean(errs)), mae=float(np.mean(abs_errs)))
        row["fit_seconds"] = float(np.mean(fit_s))
        rows.append(row)
    return rows


def run_ranking(protocol, train_arr, test_arr, catalogue, configs, threshold=4.0):
    train = RatingMatrix.from_arrays(*train_arr, items=catalogue)
    u = train.user_indices(test_arr[0])
    i = train.item_indices(test_arr[1])
    rel: dict[int, list[int]] = {}
    for a, b, s in zip(u.tolist(), i.tolist(), test_arr[2].tolist(), strict=True):
        if s >= threshold and a >= 0 and b >= 0:
            rel.setdefault(a, []).append(b)
    users = np.asarray(sorted(rel), dtype=np.int64)
    relevant = [np.asarray(rel[x]) for x in users.tolist()]
    rows = []
    for cfg in configs:
        t0 = time.perf_counter()
        top = top_n_for(cfg, train, users)
        secs = time.perf_counter() - t0
        row = _empty_row(protocol, cfg.name)
        row.update(ranking_metrics(top, relevant, train.n_items))
        row["fit_seconds"] = secs
        rows.append(row)
    return rows


def _load(path):
    return read_ratings(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m recommendations.engine.evaluate", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--data", type=Path, default=None, help="MovieLens 100k directory")
    ap.add_argument("--protocol", choices=["ml100k-folds", "ml100k-ua", "all"], default="all")
    ap.add_argument("--train", type=Path, help="training ratings file (with --test)")
    ap.add_argument("--test", type=Path, help="test ratings file (with --train)")
    ap.add_argument(
        "--config",
        action="append",
        choices=sorted(ALL_CONFIGS),
        help="configuration(s) to run (default: the best ones and the product defaults)",
    )
    ap.add_argument("--all-configs", action="store_true", help="run every configuration")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args(argv)

    if args.config:
        chosen = [ALL_CONFIGS[c] for c in args.config]
    elif args.all_configs:
        chosen = RATING_CONFIGS + RANKING_CONFIGS
    else:
        chosen = [ALL_CONFIGS[c] for c in DEFAULT_RATING + DEFAULT_RANKING]
    rating = [c for c in chosen if isinstance(c, RatingConfig)]
    ranking = [c for c in chosen if isinstance(c, RankingConfig)]

    rows = []
    if args.train or args.test:
        if not (args.train and args.test):
            ap.error("--train and --test go together")
        tr, te = _load(args.train), _load(args.test)
        catalogue = np.union1d(tr[1], te[1])
        rows += run_rating("split", [(tr, te)], rating)
        rows += run_ranking("split", tr, te, catalogue, ranking)
    else:
        data = args.data or default_ml100k_dir()
        if not (data / "u1.base").exists():
            print(f"MovieLens 100k not found in {data} (use --data DIR)", file=sys.stderr)
            return 2
        if args.protocol in ("ml100k-folds", "all") and rating:
            splits = [(_load(data / f"u{n}.base"), _load(data / f"u{n}.test")) for n in range(1, 6)]
            rows += run_rating("ml100k-folds", splits, rating)
        if args.protocol in ("ml100k-ua", "all") and ranking:
            catalogue, _ = read_ml100k_items(data)
            rows += run_ranking(
                "ml100k-ua", _load(data / "ua.base"), _load(data / "ua.test"), catalogue, ranking
            )
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(format_table(rows))
    return 0


def format_table(rows) -> str:
    cols = [k for k in KEYS if any(r[k] is not None for r in rows)]
    head = list(cols)
    cells = [
        [
            ("" if r[c] is None else (f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c])))
            for c in cols
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(x[j]) for x in cells)) for j, h in enumerate(head)] if cells else []
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(x.ljust(w) for x, w in zip(c, widths, strict=True)) for c in cells]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
