"""Where one Gibbs sweep of the rating model's chain spends its time.

    python bench/rating_profile.py [--ratings 1M] [--sweeps 3]

Fits the product's ``RATING_FM`` (``engine.fm.PRODUCT_FM``) on the synthetic ratings of
``--ratings`` (as bench/rating_stage.py) for ``--sweeps`` sweeps, with every kernel and
step of :class:`~recommendations.engine.fm.BayesianFM`'s sweep wrapped in a timer; prints
CPU seconds per sweep of each and in all (the features' setup apart), and the load
average (CPU seconds inflate on a loaded machine: compare runs side by side). JSON to
bench/out/rating-profile-<size>.json.
"""

import argparse
import json
import os
import time
from collections import defaultdict

import synthetic_inputs
from model_stage import ROOT, SIZES


def main() -> None:
    import django

    django.setup()
    import numpy as np

    from recommendations.engine import fm as fm_module

    parser = argparse.ArgumentParser()
    parser.add_argument("--ratings", default="1M", choices=sorted(SIZES))
    parser.add_argument("--sweeps", type=int, default=3)
    args = parser.parse_args()
    matrix = synthetic_inputs.ratings(args.ratings)
    info = synthetic_inputs.side_info(matrix.item_ids, np.random.default_rng(0), titles=False)

    spent = defaultdict(float)

    def timed(name, fn):
        def wrapper(*a, **kw):
            start = time.process_time()
            try:
                return fn(*a, **kw)
            finally:
                spent[name] += time.process_time() - start

        return wrapper

    # (nested: sample_factor's time includes _aggregates' and _factor_block's, the rest of
    # it is scipy's exact q and c products; sample_linear's includes _linear_block's)
    kernels = ["_aggregates", "_factor_block", "_linear_block", "_sync", "_pred_parts"]
    kernels += ["_residuals", "_sub_gathered", "_entity_sums"]  # (in place, where it has them)
    kernels += ["_sync_aggregates"]  # the fused pass, where the module has it
    for name in [n for n in kernels if hasattr(fm_module, n)]:
        setattr(fm_module, name, timed(name, getattr(fm_module, name)))
    for name in ("sample_hyper", "sample_linear", "sample_factor"):
        setattr(fm_module._Side, name, timed(name, getattr(fm_module._Side, name)))
    # the features (blocks, their CSC) and the chain's start: once a fit, not a sweep
    fm_module.BayesianFM._blocks = timed("setup", fm_module.BayesianFM._blocks)
    params = {**fm_module.PRODUCT_FM, "n_iter": args.sweeps + 1, "burn_in": args.sweeps}
    # warm numba's cache (compiled or loaded) outside the timers' sums
    fm_module.BayesianFM(**{**params, "n_iter": 2, "burn_in": 1}).fit(_tiny(matrix), items=info)
    spent.clear()
    start = time.process_time()
    wall = time.perf_counter()
    fm_module.BayesianFM(**params).fit(matrix, items=info)
    total = time.process_time() - start
    wall = time.perf_counter() - wall
    sweeps = params["n_iter"]
    setup = spent.pop("setup")
    result = {
        "size": args.ratings,
        "ratings": int(matrix.nnz),
        "sweeps": sweeps,
        "setup_cpu_s": round(setup, 2),
        "cpu_s_per_sweep": round((total - setup) / sweeps, 3),
        "wall_s_per_sweep": round(wall / sweeps, 3),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "cpu_s_per_sweep_by_part": {k: round(v / sweeps, 3) for k, v in sorted(spent.items())},
    }
    print(json.dumps(result, indent=1))
    out = ROOT / "bench" / "out" / f"rating-profile-{args.ratings}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))


def _tiny(matrix):
    """The first 200 users' ratings: enough to load every kernel."""
    from recommendations.engine import RatingMatrix

    csr = matrix.csr[:200]
    coo = csr.tocoo()
    return RatingMatrix.from_arrays(matrix.user_ids[coo.row], matrix.item_ids[coo.col], coo.data)


if __name__ == "__main__":
    main()
