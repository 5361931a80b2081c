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

``--seed S`` draws the new-users and new-items protocols' splits with ``S`` instead of
their own 0 (one split of ~188 new users moves NDCG@10 by +-0.04: judge a change on
several seeds; the protocols themselves are seed 0).

``--json`` prints one JSON object per (protocol, configuration) line; otherwise a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .blend import CENTRED, FEW_ALS, LOWPASS, PRODUCT_BLEND, TREND, WINDOW, Blend, top_n
from .content import ItemContent
from .data import (
    ItemInfo,
    UserInfo,
    default_ml100k_dir,
    read_items_csv,
    read_ml100k_item_info,
    read_ml100k_timestamps,
    read_ml100k_users,
    read_ratings,
)
from .ease import EASE, TopKEASE
from .factors import ALS, BayesianMF
from .fallbacks import damped_means
from .fm import PRODUCT_FM, BayesianFM, FoldedFM
from .matrix import Baselines, RatingMatrix
from .metrics import mae, ranking_metrics, rmse
from .predict import predict_batch
from .rerank import PARTS as RERANK_PARTS
from .rerank import Reranked
from .similarity import compute_neighbours
from .splits import newitems_split, newusers_split
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
        "0.7 user-user (BM25 cosine K=50) + 0.3 item-item (BM25 cosine K=20): the product's"
        " ranking before the blend",
        item=BM25_ITEM,
        user=BM25_USER,
        user_weight=0.7,
    ),
]
RANKING_CONFIGS.append(RankingConfig("random", "a fixed random order", special="random"))


@dataclass(frozen=True)
class ModelRanking:
    """A ranking estimator: ``make(train, side)`` returns a fitted model with ``score``."""

    name: str
    description: str
    make: Callable


@dataclass(frozen=True)
class ModelRating:
    """A rating estimator: ``make(train, side)`` returns a fitted model with ``predict``."""

    name: str
    description: str
    make: Callable


@dataclass(frozen=True)
class Side:
    """Side information a protocol allows: item content, user demographics (or None)."""

    items: ItemInfo | None = None
    users: UserInfo | None = None
    timestamps: tuple | None = None  # (user ids, item ids, times) of the train ratings

    def times_for(self, matrix: RatingMatrix):
        """float64 (nnz,) rating times aligned with ``matrix.csr.data``, or None."""
        if self.timestamps is None:
            return None
        t = RatingMatrix.from_arrays(*self.timestamps, items=matrix.item_ids)
        if t.csr.nnz != matrix.nnz or not np.array_equal(t.csr.indices, matrix.csr.indices):
            return None
        return t.csr.data


# Hyper-parameters chosen on a validation split of ua.base (20% of each user's ratings,
# holdout_split seed 1), never on a test split; see bench/README.md.
EASE_LAM = 500.0
# EASE on the scores rather than 1 per rating: validation NDCG@10 0.2928 at lambda 5000
# (grid 1000-8000) against binary's best 0.2748 at 500 (grid 200-800).
EASE_RATING_LAM = 5000.0
ALS_PARAMS = {"factors": 32, "regularization": 0.1, "alpha": 1.0, "weighting": "liked"}
BLEND_ALS = {
    "als_factors": 32,
    "als_reg": 0.1,
    "als_alpha": 1.0,
}
TOPK = 200
# ALS grid on the same validation split (factors 32/64/128, reg 0.1/1/10, alpha 1/4/16,
# weights binary / liked): best 32 factors, reg 10, alpha 1, liked (NDCG@10 0.2754; the
# ALS_PARAMS above reach 0.2598 there).
PRODUCT_FOLDS = {"tuner": "folds", "folds": 2, "max_val_users": 1000, "min_coverage": 0.05}
BLEND_ALS_TUNED = {"als_factors": 32, "als_reg": 10.0, "als_alpha": 1.0, "als_weighting": "liked"}


def _fm_rating(matrix, items):
    """The product's rating model (PRODUCT_FM) as the second stage's rating feature."""
    return BayesianFM(**PRODUCT_FM).fit(matrix, items=items)


def _product(extra=None):
    """``make`` for the product blend with ``extra`` settings over PRODUCT_BLEND (fitted
    with item content and the train's rating times, as the recompute fits it)."""
    conf = PRODUCT_BLEND | (extra or {})
    return lambda t, s: Blend(**conf).fit(t, items=s.items, timestamps=s.times_for(t))


def _blend(ease_k, **kw):
    def make(train, side):
        b = Blend(**({"ease_lam": EASE_LAM, "ease_k": ease_k} | BLEND_ALS | kw))
        return b.fit(train, items=side.items, users=side.users, timestamps=side.times_for(train))

    return make


MODEL_CONFIGS = [
    ModelRanking(
        "ease",
        f"EASE, dense closed form, lambda {EASE_LAM:g}",
        lambda t, s: EASE(lam=EASE_LAM).fit(t),
    ),
    ModelRanking(
        "ease-rating",
        f"EASE on the scores (not 1 per rating), lambda {EASE_RATING_LAM:g}",
        lambda t, s: EASE(lam=EASE_RATING_LAM, weighting="rating").fit(t),
    ),
    ModelRanking(
        "ease-topk",
        f"EASE over each item's top-{TOPK} cosine neighbours, lambda {EASE_LAM:g}",
        lambda t, s: TopKEASE(lam=EASE_LAM, k=TOPK).fit(t),
    ),
    ModelRanking(
        "als",
        "implicit ALS (implicit 0.7.3), factors 32, reg 0.1, alpha 1, weights r-2",
        lambda t, s: ALS(**ALS_PARAMS).fit(t),
    ),
    ModelRanking(
        "content",
        "TF-IDF of genres, year and title words; cosine to the user's 4-5 star items",
        lambda t, s: ItemContent().fit(t, info=s.items),
    ),
    ModelRanking(
        "blend",
        "self-tuned blend, EASE on the 10k most-rated items (see blend.py)",
        _blend(0),
    ),
    ModelRanking(
        "blend-rating",
        f"as blend with EASE on the scores, lambda {EASE_RATING_LAM:g}",
        _blend(0, ease_lam=EASE_RATING_LAM, ease_weighting="rating"),
    ),
    ModelRanking(
        "blend-tuned",
        f"blend with EASE on the scores (lambda {EASE_RATING_LAM:g}) and ALS tuned on"
        " validation (32 factors, reg 10, alpha 1, weights max(r - 2, 0.5))",
        _blend(0, ease_lam=EASE_RATING_LAM, ease_weighting="rating", **BLEND_ALS_TUNED),
    ),
    ModelRanking(
        "product",
        "what the product serves (blend.PRODUCT_BLEND = recommendations MODEL_BLEND): as"
        " blend-tuned, EASE over the 5,000 most-rated items keeping each item's 100"
        " largest weights, the few segment on loved co-occurrence with a coverage floor;"
        " no user demographics (the site has none)",
        _product(),
    ),
    ModelRanking(
        "product-demo",
        "as product with MovieLens user demographics as a blend part (the site has none:"
        " for comparison only)",
        lambda t, s: Blend(**PRODUCT_BLEND).fit(
            t, items=s.items, users=s.users, timestamps=s.times_for(t)
        ),
    ),
    ModelRanking(
        "product-folds",
        "as product, weights from the 'folds' tuner (2 carved validation splits, FOLD_GRID,"
        " coverage@10 >= 5% on validation)",
        _product(PRODUCT_FOLDS),
    ),
    ModelRanking(
        "product-few-als",
        "as product, the few segment with a heavily regularised ALS part (reg 100) tuned on"
        " up to 3 carves of new users (blend.FEW_ALS)",
        _product(FEW_ALS),
    ),
    ModelRanking(
        "product-rerank",
        "the product blend's top 100 per user reordered by a second stage (engine/rerank.py):"
        " a logistic model over each part's score, popularity, mean rating, the user's"
        " activity, genre affinity, rating times and the product FM's predicted rating,"
        " trained on 10 ratings per user carved out of train (evaluation only)",
        lambda t, s: Reranked(blend=PRODUCT_BLEND, rating=_fm_rating).fit(
            t, items=s.items, timestamps=s.times_for(t)
        ),
    ),
    ModelRanking(
        "product-no-trend",
        "as product without the few segment's trend part (the loved count decayed over"
        " 90 days as of the user's last rating: blend TREND, engine/trend.py)",
        _product(dict.fromkeys(TREND, 0.0)),
    ),
    ModelRanking(
        "product-no-new-place",
        "as product without the few segment's new-item place (few_new_at 0: an item"
        " without ratings reaches a new user only through the tuned content weight)",
        _product({"few_new_at": 0}),
    ),
    ModelRanking(
        "product-centred",
        "as product plus EASE on centred ratings (score - 3, lambda 300, pruned as EASE) as a"
        " part the many segment may weigh (blend.CENTRED)",
        _product(CENTRED),
    ),
    ModelRanking(
        "product-window",
        "as product plus the activity window (each item's ratings from 30 days before the"
        " user's first rating to their last, engine/window.py) as a many-segment part",
        _product(WINDOW),
    ),
    ModelRanking(
        "product-few-max-5",
        "as product with the few segment only up to 5 ratings (few_max 5): ml100k-ua's 31"
        " users with 10 random train ratings then get the many weights. Not the product's:"
        " on validation users who keep their FIRST 6-15 ratings (what the site sees) the"
        " few weights win (bench/README, ninth round)",
        _product({"few_max": 5}),
    ),
    ModelRanking(
        "product-centred-unpruned",
        "as product-centred with both EASE parts unpruned (ease_keep 0: a dense head a"
        " worker could not hold at 5,000 items)",
        _product(CENTRED | {"ease_keep": 0}),
    ),
    ModelRanking(
        "product-lowpass",
        "as product plus an ideal low-pass filter of the item graph (the top 64 singular"
        " vectors of the normalised ratings, GF-CF; engine/lowpass.py) as a part the many"
        " segment may weigh (blend.LOWPASS)",
        _product(LOWPASS),
    ),
    ModelRanking(
        "product-lowpass-centred",
        "as product-lowpass plus the centred EASE (blend.LOWPASS and blend.CENTRED)",
        _product(LOWPASS | CENTRED),
    ),
    ModelRanking(
        "product-lowpass-centred-rerank",
        "as product-rerank over product-lowpass-centred, the low-pass and centred EASE parts"
        " also features of the second stage (evaluation only)",
        lambda t, s: Reranked(
            blend=PRODUCT_BLEND | LOWPASS | CENTRED,
            rating=_fm_rating,
            parts=(*RERANK_PARTS, "lowpass", "ease_c"),
        ).fit(t, items=s.items, timestamps=s.times_for(t)),
    ),
    ModelRanking(
        "blend-topk", f"as blend with top-{TOPK} EASE (not kept: see ease.py)", _blend(TOPK)
    ),
    ModelRating(
        "bmf",
        "Bayesian biased MF (Gibbs, 10 factors, 200 sweeps, 50 burn-in)",
        lambda t, s: BayesianMF(factors=10, n_iter=200, burn_in=50).fit(t),
    ),
]
FM_PARAMS = {"factors": 10, "n_iter": 200, "burn_in": 50}
MODEL_CONFIGS += [
    ModelRating(
        "fm",
        "Bayesian FM (Gibbs, 10 factors, 200 sweeps, 50 burn-in): ids, the user's rated-item"
        " set, demographics, genres, 5-year bins, the item's raters",
        lambda t, s: BayesianFM(**FM_PARAMS, item_raters=True).fit(t, items=s.items, users=s.users),
    ),
    ModelRating(
        "fm-no-raters",
        "as fm without the item's rater set",
        lambda t, s: BayesianFM(**FM_PARAMS).fit(t, items=s.items, users=s.users),
    ),
    ModelRating(
        "fm-ids",
        "as fm on user and item ids alone (Bayesian biased MF)",
        lambda t, s: BayesianFM(**FM_PARAMS, implicit=False).fit(t),
    ),
    ModelRating(
        "fm-product",
        "what the product serves (engine.fm.PRODUCT_FM, conf RATING_FM): a Bayesian FM on"
        " ids, the user's rated-item set, the item's raters, genres and 5-year bins (no"
        " demographics), each user folded in from their train ratings, unseen items from"
        " genres and year",
        lambda t, s: FoldedFM(**PRODUCT_FM, clip=(1.0, 5.0)).fit(t, items=s.items),
    ),
]
PRODUCT_DEFAULT = {
    # The predicted rating (API items/{id}/predicted-rating/) comes from the rating model
    # (recommendations/rating_model.py), fitted with RATING_FM = PRODUCT_FM.
    "ml100k-folds": "fm-product",
    "ml100k-ua": "product",
    "ml100k-newusers": "product",
    "ml100k-newitems": "product",
}
TARGETS = {
    "ml100k-folds": ("rmse", "<=", 0.885),
    "ml100k-ua": ("ndcg@10", ">=", 0.34),
    "ml100k-newusers": ("ndcg@10", ">=", 0.40),
    "ml100k-newitems": ("ndcg@10", ">=", 0.28),
}
DEFAULTS = {
    "ml100k-folds": ["blend-baseline-pb", "product-blend-K200", "bmf", "fm", "fm-product"],
    "ml100k-ua": [
        "popular",
        "blend-bm25",
        "ease",
        "ease-rating",
        "ease-topk",
        "als",
        "blend",
        "blend-tuned",
        "product",
    ],
    "ml100k-newusers": ["popular", "blend-bm25", "ease", "als", "blend", "blend-tuned", "product"],
    "ml100k-newitems": ["random", "content", "blend", "blend-tuned", "product"],
}
QUICK = {
    "ml100k-folds": ["fm-product"],
    "ml100k-ua": ["blend-bm25", "product"],
    "ml100k-newusers": ["popular", "product"],
    "ml100k-newitems": ["random", "product"],
}
DEFAULT_RATING = [
    *("item-baseline-pb", "blend-baseline-pb", "product-blend-K200", "bmf", "fm", "fm-product")
]
DEFAULT_RANKING = ["popular", "blend-bm25", "ease", "als", "content", "blend"]
ALL_CONFIGS = {c.name: c for c in RATING_CONFIGS + RANKING_CONFIGS + MODEL_CONFIGS}
RATING_TYPES = (RatingConfig, ModelRating)
RANKING_TYPES = (RankingConfig, ModelRanking)


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


def top_n_for(
    cfg: RankingConfig,
    train: RatingMatrix,
    users: np.ndarray,
    n: int = 10,
    *,
    candidates=None,
    tiebreak=None,
):
    if cfg.special in ("popular", "best_rated", "random"):
        if cfg.special == "popular":
            values = train.item_counts.astype(np.float64)
        elif cfg.special == "best_rated":
            values = damped_means(train)
        else:
            values = np.zeros(train.n_items)  # every item ties: the tie-break order decides
            if tiebreak is None:
                tiebreak = np.random.default_rng(0).permutation(train.n_items)
        scores = np.broadcast_to(values, (users.size, train.n_items))
        return top_n(scores, n, exclude=train.csr[users], candidates=candidates, tiebreak=tiebreak)
    if candidates is not None:  # neighbour sums rank everything; keep the candidates
        full = top_n_for(cfg, train, users, n=train.n_items)
        out = np.full((users.size, n), -1, dtype=np.int64)
        for r in range(users.size):
            keep = full[r][(full[r] >= 0)]
            keep = keep[candidates[keep]][:n]
            out[r, : keep.size] = keep
        return out
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


# -- protocols --------------------------------------------------------------------------
def _empty_row(protocol, name):
    return dict.fromkeys(KEYS) | {"protocol": protocol, "config": name}


def run_rating(protocol, splits, configs, clip=(1.0, 5.0), side=None):
    side = side or Side()
    rows = []
    for cfg in configs:
        errs, abs_errs, fit_s = [], [], []
        for train_arr, test_arr in splits:
            train = RatingMatrix.from_arrays(*train_arr)
            t0 = time.perf_counter()
            if isinstance(cfg, ModelRating):
                fitted = cfg.make(train, side)
            else:
                fitted = fit_rating(cfg, train)
            fit_s.append(time.perf_counter() - t0)
            u = train.user_indices(test_arr[0])
            i = train.item_indices(test_arr[1])
            if isinstance(fitted, FoldedFM):  # unseen items from their side information
                est = fitted.predict(u, i, item_ids=test_arr[1])
            elif isinstance(cfg, ModelRating):
                est = fitted.predict(u, i)
            else:
                est = predict_rating(train, fitted, u, i, clip)
            errs.append(rmse(est, test_arr[2]))
            abs_errs.append(mae(est, test_arr[2]))
        row = _empty_row(protocol, cfg.name)
        row.update(rmse=float(np.mean(errs)), mae=float(np.mean(abs_errs)))
        row["fit_seconds"] = float(np.mean(fit_s))
        rows.append(row)
    return rows


def run_ranking(
    protocol,
    train_arr,
    test_arr,
    catalogue,
    configs,
    threshold=4.0,
    *,
    side=None,
    candidates=None,
    tiebreak=None,
):
    """Ranking metrics at 10 over users with a relevant test item.

    ``candidates``: external ids of the only items that may be ranked (then relevance and
    coverage count only those); ``tiebreak``: int rank per candidate (aligned with
    ``candidates``) breaking score ties, lower first (default: item index).
    """
    side = side or Side()
    train = RatingMatrix.from_arrays(*train_arr, items=catalogue)
    mask, tb = None, None
    if candidates is not None:
        cand_idx = train.item_indices(candidates)
        mask = np.zeros(train.n_items, dtype=bool)
        mask[cand_idx] = True
        if tiebreak is not None:
            tb = np.full(train.n_items, len(candidates), dtype=np.int64)
            tb[cand_idx] = tiebreak
    u = train.user_indices(test_arr[0])
    i = train.item_indices(test_arr[1])
    rel: dict[int, list[int]] = {}
    for a, b, s in zip(u.tolist(), i.tolist(), test_arr[2].tolist(), strict=True):
        if s >= threshold and a >= 0 and b >= 0 and (mask is None or mask[b]):
            rel.setdefault(a, []).append(b)
    users = np.asarray(sorted(rel), dtype=np.int64)
    relevant = [np.asarray(rel[x]) for x in users.tolist()]
    n_cover = train.n_items if mask is None else int(mask.sum())
    rows = []
    for cfg in configs:
        t0 = time.perf_counter()
        if isinstance(cfg, ModelRanking):
            top = _model_top(cfg, train, users, side, mask, tb)
        else:
            top = top_n_for(cfg, train, users, candidates=mask, tiebreak=tb)
        secs = time.perf_counter() - t0
        row = _empty_row(protocol, cfg.name)
        row.update(ranking_metrics(top, relevant, n_cover))
        row["fit_seconds"] = secs
        rows.append(row)
    return rows


def _model_top(cfg, train, users, side, mask, tb, n=10):
    model = cfg.make(train, side)
    rows = train.csr[users]
    if isinstance(model, (Blend, Reranked)):
        scores = model.score(rows, user_ids=train.user_ids[users], candidates=mask)
    else:
        scores = model.score(rows)
    return top_n(scores, n, exclude=rows, candidates=mask, tiebreak=tb)


def _load(path):
    return read_ratings(path)


def _select(ap, args, protocol):
    if args.config:
        return [ALL_CONFIGS[c] for c in args.config]
    if args.all_configs:
        return list(ALL_CONFIGS.values())
    names = (QUICK if args.quick else DEFAULTS).get(protocol, DEFAULT_RATING + DEFAULT_RANKING)
    return [ALL_CONFIGS[c] for c in names]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m recommendations.engine.evaluate", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--data", type=Path, default=None, help="MovieLens 100k directory")
    ap.add_argument(
        "--protocol",
        choices=["ml100k-folds", "ml100k-ua", "ml100k-newusers", "ml100k-newitems", "all"],
        default="all",
    )
    ap.add_argument("--train", type=Path, help="training ratings file (with --test)")
    ap.add_argument("--test", type=Path, help="test ratings file (with --train)")
    ap.add_argument(
        "--items",
        type=Path,
        help="item side information: CSV with a header naming an item id column and "
        "'genres' (pipe-separated); MovieLens movies.csv works as is",
    )
    ap.add_argument(
        "--candidates",
        choices=["all", "cold"],
        default="all",
        help="with --train/--test: rank every item (all) or only items absent from train",
    )
    ap.add_argument(
        "--config",
        action="append",
        choices=sorted(ALL_CONFIGS),
        help="configuration(s) to run (default: the best ones and the product defaults)",
    )
    ap.add_argument("--all-configs", action="store_true", help="run every configuration")
    ap.add_argument("--quick", action="store_true", help="product defaults and one baseline only")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the ml100k-newusers / ml100k-newitems splits (the protocols: 0)",
    )
    args = ap.parse_args(argv)

    rows = []
    if args.train or args.test or args.items:
        if not (args.train and args.test):
            ap.error("--train and --test go together (--items needs them)")
        try:
            tr, te = _load(args.train), _load(args.test)
            items = read_items_csv(args.items) if args.items else None
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        chosen = _select(ap, args, "split")
        catalogue = np.union1d(tr[1], te[1])
        if items is not None:
            catalogue = np.union1d(catalogue, items.item_ids)
        side = Side(items=items)
        if items is None:
            chosen = [c for c in chosen if c.name != "content"]
        rows += run_rating("split", [(tr, te)], [c for c in chosen if isinstance(c, RATING_TYPES)])
        ranking = [c for c in chosen if isinstance(c, RANKING_TYPES)]
        if args.candidates == "cold":
            cold = np.setdiff1d(catalogue, tr[1])
            tiebreak = np.random.default_rng(0).permutation(cold.size)
            rows += run_ranking(
                "split", tr, te, catalogue, ranking, side=side, candidates=cold, tiebreak=tiebreak
            )
        else:
            rows += run_ranking("split", tr, te, catalogue, ranking, side=side)
    else:
        data = args.data or default_ml100k_dir()
        if not (data / "u1.base").exists():
            print(f"MovieLens 100k not found in {data} (use --data DIR)", file=sys.stderr)
            return 2
        items = read_ml100k_item_info(data)
        side = Side(items=items, users=read_ml100k_users(data))
        catalogue = items.item_ids
        want = (
            ["ml100k-folds", "ml100k-ua", "ml100k-newusers", "ml100k-newitems"]
            if args.protocol == "all"
            else [args.protocol]
        )
        for protocol in want:
            chosen = _select(ap, args, protocol)
            rating = [c for c in chosen if isinstance(c, RATING_TYPES)]
            ranking = [c for c in chosen if isinstance(c, RANKING_TYPES)]
            if protocol == "ml100k-folds" and rating:
                splits = [
                    (_load(data / f"u{n}.base"), _load(data / f"u{n}.test")) for n in range(1, 6)
                ]
                rows += run_rating(protocol, splits, rating, side=side)
            elif protocol == "ml100k-ua" and ranking:
                tr, te = _load(data / "ua.base"), _load(data / "ua.test")
                ts = np.loadtxt(data / "ua.base", dtype=np.int64, usecols=(0, 1, 3), ndmin=2)
                timed = replace(side, timestamps=(ts[:, 0], ts[:, 1], ts[:, 2]))
                rows += run_ranking(protocol, tr, te, catalogue, ranking, side=timed)
            elif protocol in ("ml100k-newusers", "ml100k-newitems") and ranking:
                u, i, r, t = read_ml100k_timestamps(data)
                if protocol == "ml100k-newusers":
                    sp_ = newusers_split(u, i, t, seed=args.seed)
                    kw = {}
                else:
                    sp_ = newitems_split(u, i, seed=args.seed)
                    kw = {"candidates": sp_.chosen, "tiebreak": sp_.tiebreak}
                train = (u[sp_.train], i[sp_.train], r[sp_.train])
                test = (u[sp_.test], i[sp_.test], r[sp_.test])
                timed = replace(side, timestamps=(train[0], train[1], t[sp_.train]))
                rows += run_ranking(protocol, train, test, catalogue, ranking, side=timed, **kw)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(format_table(rows))
        summary = format_summary(rows)
        if summary:
            print()
            print(summary)
    return 0


def format_summary(rows) -> str:
    """Per protocol: the best configuration, the product default and the target."""
    lines = []
    for protocol, (metric, op, target) in TARGETS.items():
        got = [r for r in rows if r["protocol"] == protocol and r[metric] is not None]
        if not got:
            continue
        pick = min if op == "<=" else max
        best = pick(got, key=lambda r: r[metric])
        line = f"{protocol}: best {best['config']} {metric} {best[metric]:.4f}"
        default = next((r for r in got if r["config"] == PRODUCT_DEFAULT[protocol]), None)
        if default is not None:
            met = default[metric] <= target if op == "<=" else default[metric] >= target
            line += (
                f"; product default {default['config']} {default[metric]:.4f}"
                f" (target {op} {target}: {'met' if met else 'not met'})"
            )
        if metric == "ndcg@10" and default is not None:
            line += f", coverage@10 {default['coverage@10']:.3f}"
        lines.append(line)
    return "\n".join(lines)


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
