"""Cost of the recompute's stored-lists ("ready") stage with the ranking model, per user
and in total, and that the batched stage writes byte-for-byte the lists the per-user
ranking writes.

    nice -n 10 python bench/ready_stage.py [--ratings 1M] [--users 2000] [--batch 256]

Synthetic MovieLens-shaped ratings (``recommendations.engine.synthetic``, as
bench/model_stage.py: 1M = 6k users x 4k items, 10M = 70k x 10k) with synthetic side
information. The model is fitted once with fixed segment weights (what a recompute
between two tunings does) and kept in var/bench/ready-parts-<size>.npz, the user-user
lists in var/bench/ready-uu-<size>.npz; ``--reuse`` reads both back. Then, in this
process, over the first ``--users`` users (0: all):

- ``per_user``: ``build.compute_ready`` one user at a time (a block of one);
- ``batched``: ``build.compute_ready`` as the recompute calls it (blocks of ``--batch``).

Reports CPU seconds of each, per user and projected over every user, and whether the
two wrote the same bytes for every user. Numbers to stdout and
bench/out/ready-stage-<size>.json. No Redis or database is needed. With
``BENCH_CODE=/work/main --only per_user`` the stage of another checkout is measured (the
per-user stage before the batched scoring; its ``build`` reads these same inputs).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# BENCH_CODE=/path/to/another/checkout measures that checkout's stage (e.g. main's, before)
sys.path.insert(0, os.environ.get("BENCH_CODE", str(ROOT)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
os.environ.setdefault("DEBUG", "1")

import synthetic_inputs  # noqa: E402  (bench/, the script's folder)

SIZES = synthetic_inputs.SIZES


def _synthetic(size: str):
    import numpy as np

    matrix = synthetic_inputs.ratings(size)
    active = synthetic_inputs.with_unrated(matrix)
    return matrix, active, synthetic_inputs.side_info(active, np.random.default_rng(0))


def main() -> None:
    import django

    django.setup()
    import numpy as np

    from recommendations import build, model_scoring, ranking
    from recommendations.engine import Neighbours
    from recommendations.engine.blend import WARM_START

    parser = argparse.ArgumentParser()
    parser.add_argument("--ratings", default="1M", choices=sorted(SIZES))
    parser.add_argument("--users", type=int, default=2000, help="0: every user")
    parser.add_argument("--batch", type=int, default=None, help="users a block")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--only", choices=["per_user", "batched"])
    args = parser.parse_args()
    var = ROOT / "var" / "bench"
    parts_file = var / f"ready-parts-{args.ratings}.npz"
    uu_file = var / f"ready-uu-{args.ratings}.npz"
    out = ROOT / "bench" / "out" / f"ready-stage-{args.ratings}.json"

    matrix, active, info = _synthetic(args.ratings)
    arrays = synthetic_inputs.snapshot_arrays(matrix)
    inputs = build.ModelInputs.from_snapshot(arrays)
    if args.reuse:
        with np.load(parts_file, allow_pickle=False) as npz:
            parts_arrays = {k: npz[k] for k in npz.files}
        with np.load(uu_file, allow_pickle=False) as npz:
            uu = Neighbours(npz["indices"], npz["scores"], npz["support"], kind="user")
    else:
        weights = {"few": dict(WARM_START), "many": dict(WARM_START)}
        parts_arrays = model_scoring.fit_parts(
            arrays, info=info, active_ids=active, weights=weights
        )
        uu = build.compute_neighbours(
            inputs.ranking, rows=(0, matrix.n_users), **build._list_options("uu")
        )
        var.mkdir(parents=True, exist_ok=True)
        np.savez(parts_file, **parts_arrays)
        np.savez(uu_file, indices=uu.indices, scores=uu.scores, support=uu.support)
    # As the stage reads them back from the store: positive scores only (build.encode_list)
    scores = np.where(uu.scores > 0, uu.scores, np.nan).astype(np.float32)
    uu = Neighbours(np.where(uu.scores > 0, uu.indices, -1), scores, uu.support, kind="user")
    parts = model_scoring.ModelParts(parts_arrays)
    rng = np.random.default_rng(1)
    hidden_users = rng.choice(matrix.user_ids, matrix.n_users // 10, replace=False)
    lists = build.ListInputs(
        item_lists=None,
        user_lists=uu,
        stamps={int(u): "s" for u in matrix.user_ids},
        hidden={},
        inactive=np.empty(0, np.int64),
        hidden_ids={int(u): rng.choice(active, 5, replace=False) for u in hidden_users},
        inactive_ids=active[rng.choice(active.size, 3, replace=False)],
    )
    n = matrix.n_users if args.users <= 0 else min(args.users, matrix.n_users)

    def per_user():
        out = {}
        for u in range(n):
            out.update(build.compute_ready(inputs, lists, u, u + 1, model=parts))
        return out

    def batched():
        return build.compute_ready(inputs, lists, 0, n, model=parts, batch=args.batch)

    result = {"size": args.ratings, "users_total": int(matrix.n_users), "users_measured": n}
    written = {}
    for name, run in (("per_user", per_user), ("batched", batched)):
        if args.only not in (None, name):
            continue
        wall, cpu = time.perf_counter(), time.process_time()
        written[name] = run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        result[f"{name}_cpu_s"] = round(cpu, 2)
        result[f"{name}_wall_s"] = round(wall, 2)
        result[f"{name}_cpu_ms_per_user"] = round(cpu / n * 1000, 3)
        result[f"{name}_projected_cpu_s"] = round(cpu / n * matrix.n_users, 1)
    result["code"] = os.environ.get("BENCH_CODE", str(ROOT))
    result["lists"] = len(next(iter(written.values())))
    if len(written) == 2:
        a, b = written["per_user"], written["batched"]
        result["identical_bytes"] = a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    out = out.with_name(out.stem + ("" if args.only is None else f"-{args.only}") + ".json")
    result["batch"] = args.batch or "default"
    if "BENCH_CODE" in os.environ:
        out = out.with_name(out.stem + "-other.json")
    result["items"] = parts.n_items
    print(json.dumps(result, indent=1))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    del ranking


if __name__ == "__main__":
    main()
