"""Cost of the recompute's rating-model stage (the ``fm`` task) and of one predicted rating.

    python bench/rating_stage.py [--ratings 1M] [--sample 500] [--params '{"n_iter": 40}']

Synthetic MovieLens-shaped ratings (``recommendations.engine.synthetic``: 1M = 6k users x
3.7k items, 10M = 70k x 10.7k) with synthetic genres and years. Measures, in this
process, with the product's ``RATING_FM`` (``--params`` overrides some of it):

- the fm stage (``rating_model.fit_parts``): wall time, CPU time, peak RSS of the process;
- the stored parts' size;
- one predicted rating from the parts (``RatingParts.predict``: the user's fold-in, the
  item's part, the explanation), what the API's predicted-rating read costs beyond its
  database queries: p50 / p95 / p99 over ``--sample`` (user, item) pairs, a fifth of
  them items the fit never saw (from genres and year).

Numbers go to stdout and bench/out/rating-stage-<size>.json.
"""

import argparse
import json
import os
import time

# (puts the project on sys.path and picks the settings, as every bench script)
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
    args = parser.parse_args()
    params = {**option("RATING_FM"), **json.loads(args.params)}
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "RATING_FM": params}
    matrix = synthetic_inputs.ratings(args.ratings)
    csr = matrix.csr
    rng = np.random.default_rng(0)
    ids = matrix.item_ids
    info = synthetic_inputs.side_info(ids, rng, titles=False)
    arrays = synthetic_inputs.snapshot_arrays(matrix)
    rss_before = _rss_mib()
    wall, cpu = time.perf_counter(), time.process_time()
    parts_arrays = rating_model.fit_parts(arrays, info=info)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rss_peak = _rss_mib()
    size = sum(a.nbytes for a in parts_arrays.values())
    parts = rating_model.RatingParts(parts_arrays)

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
        "kept_samples": int(parts_arrays["w0_samples"].size),
        "fit_wall_s": round(wall, 1),
        "fit_cpu_s": round(cpu, 1),
        "rss_before_fit_mib": round(rss_before),
        "rss_peak_mib": round(rss_peak),
        "parts_mib": round(size / 2**20, 1),
        "predict_ms_p50": round(float(np.percentile(ms, 50)), 2),
        "predict_ms_p95": round(float(np.percentile(ms, 95)), 2),
        "predict_ms_p99": round(float(np.percentile(ms, 99)), 2),
        "predict_cpu_ms_mean": round(float(np.mean(cpu_times)) * 1000, 2),
        "predict_cpu_ms_p99": round(float(np.percentile(cpu_times, 99)) * 1000, 2),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "mean_ratings_per_user": round(csr.nnz / matrix.n_users, 1),
    }
    print(json.dumps(result, indent=1))
    out = ROOT / "bench" / "out" / f"rating-stage-{args.ratings}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
