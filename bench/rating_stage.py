"""Cost of the recompute's rating-model stage (the ``fm`` task) and of one predicted rating.

    python bench/rating_stage.py [--ratings 1M] [--sample 500] [--params '{"n_iter": 40}']
                                 [--sweep-ratings N] [--holdout 0.02] [--tag NAME]
                                 [--warm-from 0.05] [--warm '{"n_iter": 20, ...}']
                                 [--also-warm '[{"n_iter": 8, ...}, ...]'] [--profile]

Synthetic MovieLens-shaped ratings (``recommendations.engine.synthetic``: 1M = 6k users x
3.7k items, 10M = 70k x 10.7k, 25M = 162k x 62k) with synthetic genres and years. Measures, in this
process, with the product's ``RATING_FM`` (``--params`` overrides some of it):

- the fm stage (``rating_model.fit_parts``): wall time, CPU time, peak RSS of the process;
- the stored parts' size;
- one predicted rating from the parts (``RatingParts.predict``: the user's fold-in, the
  item's part, the explanation), what the API's predicted-rating read costs beyond its
  database queries: p50 / p95 / p99 over ``--sample`` (user, item) pairs, a fifth of
  them items the fit never saw (from genres and year).

``--sweep-ratings`` sets ``RATING_FM_SWEEP_RATINGS`` (the chain is cut to that many
sweeps x ratings; 0: never). ``--holdout F`` first takes a random fraction F of the
ratings out (seed 1) and reports their RMSE as the product serves them: each user folded
in from their remaining ratings, an item without a column from its genres and year.

``--warm-from F`` measures a warm start (``RATING_FM_WARM``, ``--warm`` overrides it): a
"previous version" is first fitted (cold, the product's chain) on the ratings without a
random fraction F of them and without every rating of a random fraction F of the users
(new users since), cached in var/bench/; the measured fit then starts from its chain.
``--also-warm`` fits and scores more warm chains on the same data (fit CPU, RMSE only).

``--profile`` samples the fit's RSS (``rss_profile.py``, as bench/model_stage.py's) and
reports where it peaked (``memory``). The peak RSS does not depend on the chain's length
(the kept samples are small), so ``--params '{"n_iter": 3, "burn_in": 1}'`` measures it
cheaply.

Numbers go to stdout and bench/out/rating-stage-<size>[-<tag>].json.
"""

import argparse
import contextlib
import json
import os
import time

# (puts the project on sys.path and picks the settings, as every bench script)
import rss_profile
import synthetic_inputs
from model_stage import ROOT, SIZES, _rss_mib


def main() -> None:
    import django

    django.setup()
    import numpy as np
    from django.conf import settings

    from recommendations import rating_model
    from recommendations.conf import get as option

    parser = argparse.ArgumentParser()
    parser.add_argument("--ratings", default="1M", choices=sorted(SIZES))
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument("--params", default="{}", help="JSON overriding RATING_FM's keys")
    parser.add_argument("--sweep-ratings", type=int, default=None)
    parser.add_argument("--holdout", type=float, default=0.0)
    parser.add_argument("--tag", default="")
    parser.add_argument("--warm-from", type=float, default=0.0)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--warm", default="{}", help="JSON overriding RATING_FM_WARM's keys")
    parser.add_argument(
        "--also-warm", default="[]", help="JSON list of more RATING_FM_WARM chains to measure"
    )
    args = parser.parse_args()
    params = {**option("RATING_FM"), **json.loads(args.params)}
    overrides = {"RATING_FM": params, "RATING_FM_WARM": {**option("RATING_FM_WARM"),
                                                         **json.loads(args.warm)}}  # fmt: skip
    if args.sweep_ratings is not None:
        overrides["RATING_FM_SWEEP_RATINGS"] = args.sweep_ratings
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, **overrides}
    matrix = synthetic_inputs.ratings(args.ratings)
    rng = np.random.default_rng(0)
    ids = matrix.item_ids
    info = synthetic_inputs.side_info(ids, rng, titles=False)
    held = None
    if args.holdout:
        matrix, held = _split(matrix, args.holdout)
    csr = matrix.csr
    arrays = synthetic_inputs.snapshot_arrays(matrix)
    warm = _previous(matrix, info, args) if args.warm_from else None
    rss_before = _rss_mib()
    profile = rss_profile.RssProfile() if args.profile else contextlib.nullcontext()
    wall, cpu = time.perf_counter(), time.process_time()
    with profile:
        parts_arrays = rating_model.fit_parts(arrays, info=info, warm=warm)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rss_peak = _rss_mib()
    size = sum(a.nbytes for a in parts_arrays.values())
    parts = rating_model.RatingParts(parts_arrays)
    held_out = _rmse(parts, matrix, held, info) if held is not None else {}

    users = rng.choice(matrix.n_users, args.sample)
    targets = rng.choice(matrix.n_items, args.sample)
    cold = rng.random(args.sample) < 0.2
    times, cpu_times = [], []
    for k, t, c in zip(users.tolist(), targets.tolist(), cold.tolist(), strict=True):
        lo, hi = csr.indptr[k], csr.indptr[k + 1]
        item = -1 if c else int(ids[t])
        start, cpu_start = time.perf_counter(), time.process_time()
        parts.predict(
            ids[csr.indices[lo:hi]], csr.data[lo:hi], item, genres=["Drama", "Crime"], year=1999
        )
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    ms = np.array(times) * 1000
    result = {
        "size": args.ratings,
        "ratings": int(csr.nnz),
        "users": int(matrix.n_users),
        "items": int(matrix.n_items),
        "params": params,
        "sweep_ratings": option("RATING_FM_SWEEP_RATINGS"),
        "warm_from": args.warm_from,
        "warm": parts.config["warm"],
        "fitted_params": parts.config["params"],
        **held_out,
        "kept_samples": int(parts_arrays["w0_samples"].size),
        "fit_wall_s": round(wall, 1),
        "fit_cpu_s": round(cpu, 1),
        "rss_before_fit_mib": round(rss_before),
        "rss_peak_mib": round(rss_peak),
        **({"memory": profile.report()} if args.profile else {}),
        "parts_mib": round(size / 2**20, 1),
        "predict_ms_p50": round(float(np.percentile(ms, 50)), 2),
        "predict_ms_p95": round(float(np.percentile(ms, 95)), 2),
        "predict_ms_p99": round(float(np.percentile(ms, 99)), 2),
        "predict_cpu_ms_mean": round(float(np.mean(cpu_times)) * 1000, 2),
        "predict_cpu_ms_p99": round(float(np.percentile(cpu_times, 99)) * 1000, 2),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "mean_ratings_per_user": round(csr.nnz / matrix.n_users, 1),
    }
    result["also_warm"] = []
    for chain in json.loads(args.also_warm) if warm is not None else []:
        settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "RATING_FM_WARM": chain}
        cpu = time.process_time()
        more = rating_model.fit_parts(arrays, info=info, warm=warm)
        cpu = time.process_time() - cpu
        more = rating_model.RatingParts(more)
        row = {"warm": chain, "fit_cpu_s": round(cpu, 1), "kept_samples": more.fm.w0_samples_.size}
        row.update(_rmse(more, matrix, held, info) if held is not None else {})
        print("also:", json.dumps(row), flush=True)
        result["also_warm"].append(row)
    print(json.dumps(result, indent=1))
    tag = f"-{args.tag}" if args.tag else ""
    out = ROOT / "bench" / "out" / f"rating-stage-{args.ratings}{tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))


def _previous(matrix, info, args) -> dict:
    """The parts of a "previous version" (see the module docstring), fitted once per
    size, fraction, holdout and chain (cached as var/bench/rating-prev-*.npz)."""
    import hashlib

    import numpy as np
    from django.conf import settings

    from recommendations import rating_model
    from recommendations.conf import get as option
    from recommendations.engine import RatingMatrix

    key = json.dumps([args.ratings, args.warm_from, args.holdout, option("RATING_FM")])
    path = ROOT / "var" / "bench" / f"rating-prev-{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as saved:
            return dict(saved)
    rng = np.random.default_rng(2)
    coo = matrix.csr.tocoo()
    gone_users = rng.random(matrix.n_users) < args.warm_from
    keep = (rng.random(coo.nnz) >= args.warm_from) & ~gone_users[coo.row]
    prev = RatingMatrix.from_arrays(
        matrix.user_ids[coo.row[keep]], matrix.item_ids[coo.col[keep]], coo.data[keep]
    )
    cold = {**settings.RECOMMENDATIONS, "RATING_FM_WARM": {}}
    saved_settings, settings.RECOMMENDATIONS = settings.RECOMMENDATIONS, cold
    try:
        parts = rating_model.fit_parts(synthetic_inputs.snapshot_arrays(prev), info=info)
    finally:
        settings.RECOMMENDATIONS = saved_settings
    cpu = rating_model.RatingParts(parts).config["fit_cpu_seconds"]
    print(f"previous version: {prev.nnz} ratings, {prev.n_users} users, {cpu} CPU s", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **parts)
    return parts


def _split(matrix, fraction):
    """(train matrix, held-out (user index, item index, score)): a random ``fraction`` of
    the ratings (seed 1) out, each user keeping at least one."""
    import numpy as np

    from recommendations.engine import RatingMatrix
    from recommendations.engine.matrix import _index_of

    coo = matrix.csr.tocoo()
    out = np.random.default_rng(1).random(coo.nnz) < fraction
    first = np.r_[True, coo.row[1:] != coo.row[:-1]]  # (csr order: by user)
    out &= ~first
    train = RatingMatrix.from_arrays(
        matrix.user_ids[coo.row[~out]], matrix.item_ids[coo.col[~out]], coo.data[~out]
    )
    users = _index_of(train.user_ids, matrix.user_ids[coo.row[out]])
    return train, (users, matrix.item_ids[coo.col[out]], coo.data[out])


def _rmse(parts, train, held, info) -> dict:
    """RMSE of the held-out ratings as served: per user one fold-in from their train row,
    items without a column from their genres and year."""
    import numpy as np

    from recommendations.engine.matrix import _index_of

    users, item_ids, truth = held
    fm = parts.fm
    cols = _index_of(parts.item_ids, item_ids)
    model_cols = _index_of(parts.item_ids, train.item_ids)  # train column -> model column
    sub = info.subset(item_ids[cols < 0])
    cold = fm.cold_item_parts(sub.genres, sub.years) if (cols < 0).any() else None
    where = np.full(cols.size, -1)
    where[cols < 0] = np.arange(int((cols < 0).sum()))
    pred = np.empty(truth.size)
    csr = train.csr
    order = np.argsort(users, kind="stable")
    for group in np.split(order, np.flatnonzero(np.diff(users[order])) + 1):
        u = users[group[0]]
        row = slice(csr.indptr[u], csr.indptr[u + 1])
        rated = model_cols[csr.indices[row]]
        keep = rated >= 0
        state = fm.fold_in(rated[keep], csr.data[row][keep])
        it = np.empty((state.shape[0], group.size, state.shape[1]))
        warm = cols[group] >= 0
        it[:, warm] = fm.item_samples_[:, cols[group][warm]]
        if (~warm).any():
            it[:, ~warm] = cold[:, where[group][~warm]]
        pred[group] = fm.predict_folded(state, None, item_parts=it)
    return {
        "held_out_ratings": int(truth.size),
        "held_out_rmse": round(float(np.sqrt(np.mean((pred - truth) ** 2))), 4),
        "held_out_items_without_column": int((cols < 0).sum()),
    }


if __name__ == "__main__":
    main()
