"""Fit cost of the issue-12 models: ``python -m recommendations.engine.bench_models``.

Each model is fitted in its own child process on a synthetic MovieLens-shaped set
(synthetic.py, cached in ``bench/out/``), so the peak resident memory (VmHWM, including
the loaded data) is the model's own. Reported: fit seconds (wall) and CPU seconds, peak
GiB, and the fold-in: the median seconds to score one user from their rating row against
every item (what the incremental update after a rating costs). Items get random synthetic
side information (genres, year, a title word) so the content parts have something to fit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from .bench import _peak_gib, dataset_path, measure
from .data import ItemInfo, read_ratings

# (lowpass and ease-centred: evaluate product-lowpass-centred's two extra parts, not the
# product's; run them with --models)
MODELS = ["ease-topk", "ease", "als", "bmf", "fm", "blend"]
EXTRA = ["lowpass", "ease-centred"]


def synthetic_items(item_ids) -> ItemInfo:
    rng = np.random.default_rng(0)
    genres = [f"genre{k}" for k in range(18)]
    n = len(item_ids)
    return ItemInfo(
        item_ids=np.asarray(item_ids, dtype=np.int64),
        titles=[f"title{w}" for w in rng.integers(0, n // 4 + 1, n)],
        years=rng.integers(1950, 2020, n).astype(float),
        genres=[list(rng.choice(genres, rng.integers(1, 4), replace=False)) for _ in range(n)],
        tags=[[] for _ in range(n)],
    )


def _make(name):
    from .blend import CENTRED, LOWPASS, Blend
    from .ease import EASE, TopKEASE
    from .evaluate import ALS_PARAMS, BLEND_ALS, EASE_LAM, TOPK
    from .factors import ALS, BayesianMF
    from .fm import BayesianFM
    from .lowpass import LowPass

    return {
        "ease-topk": lambda m, info: TopKEASE(lam=EASE_LAM, k=TOPK).fit(m),
        "ease": lambda m, info: EASE(lam=EASE_LAM, max_items=10_000).fit(m),
        "als": lambda m, info: ALS(**ALS_PARAMS).fit(m),
        "bmf": lambda m, info: BayesianMF(factors=10, n_iter=30, burn_in=10).fit(m),
        "fm": lambda m, info: BayesianFM(factors=10, n_iter=30, burn_in=10, item_raters=True).fit(
            m, items=info
        ),
        "blend": lambda m, info: Blend(ease_lam=EASE_LAM, **BLEND_ALS).fit(m, items=info),
        "lowpass": lambda m, info: LowPass(k=LOWPASS["lowpass_k"]).fit(m),
        # as PRODUCT_BLEND's EASE: the 5,000 most-rated items, 100 weights kept a row
        "ease-centred": lambda m, info: EASE(
            lam=CENTRED["ease_c_lam"], max_items=5000, weighting="centred", keep=100
        ).fit(m),
    }[name]


def _child(spec: dict) -> dict:
    from .matrix import RatingMatrix

    u, i, r = read_ratings(spec["data"])
    m = RatingMatrix.from_arrays(u, i, r)
    del u, i, r
    info = synthetic_items(m.item_ids)
    make = _make(spec["model"])
    tiny = RatingMatrix.from_arrays(np.arange(40) % 8, np.arange(40) % 13, np.ones(40) * 4)
    make(tiny, synthetic_items(tiny.item_ids))  # numba compilation outside the timing
    c0, t0 = time.process_time(), time.perf_counter()
    model = make(m, info)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    fold = []
    rows = np.random.default_rng(0).choice(m.n_users, 50, replace=False)
    for u in rows:
        row = m.csr[u : u + 1]
        t1 = time.perf_counter()
        if hasattr(model, "score"):
            model.score(row)
        else:
            model.predict(np.full(m.n_items, u), np.arange(m.n_items))
        fold.append(time.perf_counter() - t1)
    return {
        "seconds": secs,
        "cpu_seconds": cpu,
        "fold_in_seconds": float(np.median(fold)),
        "nnz": int(m.nnz),
        "items": m.n_items,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recommendations.engine.bench_models")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="1M", help="comma-separated: 1M,10M,25M")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args(argv)
    if args.child:
        res = _child(json.loads(args.child))
        res["peak_gib"] = _peak_gib()
        print(json.dumps(res))
        return 0
    print("data  model       ratings     items  fit s    cpu s    fold-in ms  peak GiB")
    for size in args.sizes.split(","):
        path = str(dataset_path(size))
        for name in args.models.split(","):
            res = measure(
                {"data": path, "model": name}, args.timeout, "recommendations.engine.bench_models"
            )
            if "error" in res:
                print(f"{size:5} {name:11} error: {res['error']}", flush=True)
                continue
            print(
                f"{size:5} {name:11} {res['nnz']:>10,} {res['items']:>7,}  {res['seconds']:7.1f}"
                f"  {res['cpu_seconds']:7.1f}  {1000 * res['fold_in_seconds']:10.2f}"
                f"  {res['peak_gib']:8.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
