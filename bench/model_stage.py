"""Cost of the recompute's ranking-model stage and of scoring one user from its parts.

    python bench/model_stage.py [--ratings 1M] [--sample 300] [--reuse] [--untuned]
                                [--profile] [--no-times]

Synthetic MovieLens-shaped ratings (``recommendations.engine.synthetic``: 1M = 6k users x
4k items, 10M = 70k x 10k, 25M = 162k x 62k) with synthetic side information (12 genres,
title words, years) and rating times (``synthetic_inputs.rating_times``; ``--no-times``:
none), plus 2% of the items active without any rating. Measures, in this
process, with the product's settings (``recommendations.conf``):

- the model stage (``model_scoring.fit_parts``: the blend's tuning and fit, pruning, the
  arrays): wall time, CPU time and the process's peak RSS;
- the stored parts' size;
- scoring one user from the parts and ranking their list (what the list stage does per
  user, and the live path and the update after a rating per request): median and p95
  over ``--sample`` users, and the list stage's total projected over every user.

``--profile`` samples the fit's RSS (``rss_profile.py``) and reports the highest RSS
seen inside each of the project's functions and the stack at the peak (``memory``).
``--untuned`` fits with the last run's weights (what a recompute between two tunings
does, ``MODEL_RETUNE_HOURS``) and reports that fit as ``refit_*``.
The fitted parts are kept in var/bench/model-parts-<size>.npz; ``--reuse`` scores from
them without fitting again (the fit's numbers then come from the last JSON).
Numbers go to stdout and bench/out/model-stage-<size>.json.
"""

import argparse
import contextlib
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
os.environ.setdefault("DEBUG", "1")

import rss_profile  # noqa: E402  (bench/, the script's folder)
import synthetic_inputs  # noqa: E402

SIZES = synthetic_inputs.SIZES


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    import django

    django.setup()
    import numpy as np

    from recommendations import model_scoring

    parser = argparse.ArgumentParser()
    parser.add_argument("--ratings", default="1M", choices=sorted(SIZES))
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--untuned", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--no-times",
        action="store_true",
        help="a snapshot without rating times (the few segment tuned on random ratings,"
        " no trend part: the model stage before the eighth round)",
    )
    args = parser.parse_args()
    saved = ROOT / "var" / "bench" / f"model-parts-{args.ratings}.npz"
    out = ROOT / "bench" / "out" / f"model-stage-{args.ratings}.json"
    matrix = synthetic_inputs.ratings(args.ratings)
    csr = matrix.csr
    active = synthetic_inputs.with_unrated(matrix)
    n_cold = active.size - matrix.n_items
    rng = np.random.default_rng(0)
    info = synthetic_inputs.side_info(active, rng)
    arrays = synthetic_inputs.snapshot_arrays(matrix, times=not args.no_times)
    if args.untuned:
        last = json.loads(out.read_text())
        wall, cpu = time.perf_counter(), time.process_time()
        model_scoring.fit_parts(arrays, info=info, active_ids=active, weights=last["weights"])
        last["refit_wall_s"] = round(time.perf_counter() - wall, 1)
        last["refit_cpu_s"] = round(time.process_time() - cpu, 1)
        last["refit_rss_peak_mib"] = round(_rss_mib())
        print(json.dumps(last, indent=1))
        out.write_text(json.dumps(last, indent=1))
        return
    if args.reuse:
        with np.load(saved, allow_pickle=False) as npz:
            parts_arrays = {k: npz[k] for k in npz.files}
        fit = {
            k: v
            for k, v in json.loads(out.read_text()).items()
            if k.startswith(("fit", "rss", "refit"))
        }
    else:
        rss_before = _rss_mib()
        profile = rss_profile.RssProfile() if args.profile else contextlib.nullcontext()
        wall, cpu = time.perf_counter(), time.process_time()
        with profile:
            parts_arrays = model_scoring.fit_parts(arrays, info=info, active_ids=active)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        fit = {
            "fit_wall_s": round(wall, 1),
            "fit_cpu_s": round(cpu, 1),
            "rss_before_fit_mib": round(rss_before),
            "rss_peak_mib": round(_rss_mib()),
        }
        if args.profile:
            fit["memory"] = profile.report()
        saved.parent.mkdir(parents=True, exist_ok=True)
        np.savez(saved, **parts_arrays)
    parts = model_scoring.ModelParts(parts_arrays)
    size = sum(a.nbytes for a in parts_arrays.values())

    from recommendations import ranking

    users = rng.choice(matrix.n_users, min(args.sample, matrix.n_users), replace=False)
    times, cpu_times = [], []
    for k in users.tolist():
        lo, hi = csr.indptr[k], csr.indptr[k + 1]
        t, c = time.perf_counter(), time.process_time()
        scored = parts.score(matrix.item_ids[csr.indices[lo:hi]], csr.data[lo:hi])
        sl = ranking.UserSlice(
            matrix=matrix,
            user=k,
            rated=csr.indices[lo:hi],
            scores=csr.data[lo:hi],
            item_neighbours=None,
            user_neighbours=None,
            model=scored,
        )
        ranking.rank(sl, hidden=np.empty(0, np.int64), n=30, user_weight=1.0)
        times.append(time.perf_counter() - t)
        cpu_times.append(time.process_time() - c)
    times_ms = np.array(times) * 1000
    cpu_ms = np.array(cpu_times) * 1000
    result = {
        "size": args.ratings,
        "ratings": int(csr.nnz),
        "users": int(matrix.n_users),
        "items_rated": int(matrix.n_items),
        "items_without_ratings": int(n_cold),
        **fit,
        "parts_mib": round(size / 2**20, 1),
        "score_and_rank_ms_p50": round(float(np.median(times_ms)), 2),
        "score_and_rank_ms_p95": round(float(np.percentile(times_ms, 95)), 2),
        "score_and_rank_cpu_ms_mean": round(float(np.mean(cpu_ms)), 2),
        "list_stage_projected_cpu_s": round(float(np.mean(cpu_ms)) * matrix.n_users / 1000, 1),
        "weights": parts.config["weights"],
        "validation": parts.config["validation"],
        "settings": {k: model_scoring.option(k) for k in ("MODEL_BLEND",)},
    }
    print(json.dumps(result, indent=1))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
