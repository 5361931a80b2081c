"""Agreement with Surprise (scikit-surprise) on MovieLens 100k fold u1, where definitions
coincide.

Where they differ (see similarity.py / predict.py): our ``cosine`` uses full-vector norms
by default (Surprise: co-rated norms, our ``co_rated_norms=True``); Surprise shrinks
pearson_baseline by ``(n-1)/(n-1+lambda)`` and forces min_support >= 2, we use
``n/(n+lambda)``; Surprise stores 0 for undefined similarities, we leave the pair out.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from recommendations.engine import Baselines, RatingMatrix, compute_neighbours, predict_batch
from recommendations.engine.data import default_ml100k_dir, read_ratings

surprise = pytest.importorskip("surprise", reason="scikit-surprise (dev dependency) missing")

DATA = default_ml100k_dir()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (Path(DATA) / "u1.base").exists(),
        reason=f"MovieLens 100k not found at {DATA} (set RECSITE_ML100K)",
    ),
]


@pytest.fixture(scope="module")
def fold():
    os.environ.setdefault("SURPRISE_DATA_FOLDER", "/tmp/surprise_data")
    reader = surprise.Reader(line_format="user item rating timestamp", sep="\t")
    data = surprise.Dataset.load_from_folds(
        [(str(DATA / "u1.base"), str(DATA / "u1.test"))], reader
    )
    from surprise.model_selection import PredefinedKFold

    trainset, testset = next(PredefinedKFold().split(data))
    u, i, r = read_ratings(DATA / "u1.base")
    m = RatingMatrix.from_arrays(u, i, r)
    # inner id (Surprise) -> our index
    uperm = np.array([m.user_index(int(trainset.to_raw_uid(x))) for x in range(m.n_users)])
    iperm = np.array([m.item_index(int(trainset.to_raw_iid(x))) for x in range(m.n_items)])
    return trainset, testset, m, uperm, iperm


def _dense(nb, n):
    out = np.full((n, n), np.nan)
    sup = np.zeros((n, n), dtype=np.int64)
    rows = np.repeat(np.arange(nb.n_rows), nb.k)
    ok = nb.indices.ravel() >= 0
    out[rows[ok], nb.indices.ravel()[ok]] = nb.scores.ravel()[ok]
    sup[rows[ok], nb.indices.ravel()[ok]] = nb.support.ravel()[ok]
    return out, sup


def _surprise_sim(trainset, perm, name, user_based, **opts):
    algo = surprise.KNNBasic(sim_options={"name": name, "user_based": user_based, **opts})
    algo.fit(trainset)
    n = perm.size
    out = np.empty((n, n))
    out[np.ix_(perm, perm)] = algo.sim
    return out


def test_als_baselines_equal_surprise(fold):
    """Default ALS biases equal Surprise's baseline_als to 1e-9."""
    trainset, _, m, uperm, iperm = fold
    algo = surprise.BaselineOnly(bsl_options={"method": "als"}, verbose=False).fit(trainset)
    b = Baselines().fit(m)
    np.testing.assert_allclose(b.user_bias_[uperm], algo.bu, atol=1e-9)
    np.testing.assert_allclose(b.item_bias_[iperm], algo.bi, atol=1e-9)


@pytest.mark.parametrize(
    ("name", "kind", "ours", "min_support"),
    [
        ("pearson_baseline", "item", {"measure": "pearson_baseline"}, 2),
        ("pearson", "user", {"measure": "pearson"}, 1),
        ("cosine", "item", {"measure": "cosine", "co_rated_norms": True}, 1),
    ],
)
def test_unshrunk_similarities_equal_surprise(fold, name, kind, ours, min_support):
    """Every defined similarity equals Surprise's to 1e-6; pairs we leave out are 0 there."""
    trainset, _, m, uperm, iperm = fold
    perm = iperm if kind == "item" else uperm
    n = perm.size
    ref = _surprise_sim(trainset, perm, name, kind == "user", shrinkage=0, min_support=min_support)
    nb = compute_neighbours(
        m, kind=kind, k=n - 1, shrinkage=0, min_support=min_support, dtype=np.float64, **ours
    )
    got, _ = _dense(nb, n)
    defined = ~np.isnan(got)
    np.testing.assert_allclose(got[defined], ref[defined], atol=1e-6, rtol=0)
    off = ~defined & ~np.eye(n, dtype=bool)
    assert np.all(np.nan_to_num(ref[off], nan=0.0) == 0)


def test_shrunk_pearson_baseline_differs_only_by_the_shrinkage_factor(fold):
    """Ours * (n + l) / n * (n - 1) / (n - 1 + l) equals Surprise's shrunk value."""
    trainset, _, m, _, iperm = fold
    n = iperm.size
    ref = _surprise_sim(trainset, iperm, "pearson_baseline", False, shrinkage=100)
    nb = compute_neighbours(
        m,
        kind="item",
        measure="pearson_baseline",
        k=n - 1,
        shrinkage=100,
        min_support=2,
        dtype=np.float64,
    )
    got, sup = _dense(nb, n)
    d = ~np.isnan(got)
    conv = got[d] * (sup[d] + 100) / sup[d] * (sup[d] - 1) / (sup[d] - 1 + 100)
    np.testing.assert_allclose(conv, ref[d], atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("algo_cls", "kind", "measure", "method", "min_support"),
    [
        ("KNNBaseline", "item", "pearson_baseline", "baseline", 2),
        ("KNNWithMeans", "user", "pearson", "means", 1),
    ],
)
def test_predictions_and_rmse_equal_surprise(fold, algo_cls, kind, measure, method, min_support):
    """Unshrunk k=40 predictions equal Surprise's to 1e-6 on fold u1 and RMSE within 0.001."""
    trainset, testset, m, _, _ = fold
    algo = getattr(surprise, algo_cls)(
        k=40,
        sim_options={
            "name": measure,
            "user_based": kind == "user",
            "shrinkage": 0,
            "min_support": min_support,
        },
        verbose=False,
    ).fit(trainset)
    preds = algo.test(testset)
    users = m.user_indices([int(p.uid) for p in preds])
    items = m.item_indices([int(p.iid) for p in preds])
    ref = np.array([p.est for p in preds])
    truth = np.array([p.r_ui for p in preds])
    b = Baselines().fit(m)
    n = m.n_items if kind == "item" else m.n_users
    nb = compute_neighbours(
        m,
        kind=kind,
        measure=measure,
        k=n - 1,
        shrinkage=0,
        min_support=min_support,
        baselines=b,
        dtype=np.float64,
    )
    est, _ = predict_batch(m, nb, users, items, method=method, k=40, baselines=b, clip=(1, 5))
    known = (users >= 0) & (items >= 0)
    # exactly equal sims at the k-th place could be ordered differently; allow a handful
    close = np.abs(est[known] - ref[known]) <= 1e-6
    assert close.mean() > 0.999, f"{(~close).sum()} of {known.sum()} predictions differ"
    rmse_ours = np.sqrt(np.mean((est[known] - truth[known]) ** 2))
    rmse_ref = np.sqrt(np.mean((ref[known] - truth[known]) ** 2))
    assert abs(rmse_ours - rmse_ref) < 0.001
