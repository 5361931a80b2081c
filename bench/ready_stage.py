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
two wrote the same bytes for every user. Also:

- ``live``: the live path's ranking of one user as a request computes it on a first read
  (``ModelParts.score`` then ``ranking.rank``; the request's Redis reads and SQL queries
  come on top), wall ms a user, p50/p99;
- ``activity``: how many users the stage stores lists for with READY_ACTIVE_DAYS and
  READY_MAX_USERS (``build.ready_users``) in the synthetic data ``bench/scale.py``
  imports (its rating times: uniform over 2000-2019, regenerated here as it draws them,
  the window ending at the newest rating), and the stage's projected CPU seconds then.

``--shaped`` (always for 25M, MovieLens 25M's 160k users x 60k items) draws the model's
parts and the user-user lists at random in the stored layout and shapes instead of
fitting them, so the cost a user at that size is measured without the model stage's.
``--profile`` prints cProfile's view of the batched run to stderr. Numbers to stdout and
bench/out/ready-stage-<size>.json. No Redis or database is needed. With
``BENCH_CODE=/work/main --only per_user`` the stage of another checkout is measured (the
per-user stage before the batched scoring; its ``build`` reads these same inputs).
"""

import argparse
import json
import os
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# BENCH_CODE=/path/to/another/checkout measures that checkout's stage (e.g. main's, before)
sys.path.insert(0, os.environ.get("BENCH_CODE", str(ROOT)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
os.environ.setdefault("DEBUG", "1")

import synthetic_inputs  # noqa: E402  (bench/, the script's folder)

SIZES = synthetic_inputs.SIZES
# Sizes whose model is not fitted here (the model stage's own benchmark is where that
# costs): parts of the stored layout and shape drawn at random (see _shaped_parts), so
# the stage's cost a user at that many items and ratings is measured, not its lists' worth.
SHAPED = {"25M": (25_000_000, 160_000, 60_000)}  # as engine.synthetic.SIZES (MovieLens 25M)


def _synthetic(size: str):
    import numpy as np

    if size in SHAPED:  # (SIZES' own draw for the sizes it has)
        from recommendations.engine import RatingMatrix
        from recommendations.engine.synthetic import generate

        u, i, r = generate(*SHAPED[size])
        matrix = RatingMatrix.from_arrays(u.astype(np.int64) + 1, i.astype(np.int64) + 1, r)
    else:
        matrix = synthetic_inputs.ratings(size)
    active = synthetic_inputs.with_unrated(matrix)
    return matrix, active, synthetic_inputs.side_info(active, np.random.default_rng(0))


def _shaped_parts(matrix, active, info, rng) -> dict:
    """Model parts in the stored layout (``model_scoring.fit_parts``' arrays) with the
    shapes a fit on ``matrix`` gives, drawn at random: EASE rows for the
    ``ease_max_items`` most rated items, each keeping ``ease_keep`` weights among them;
    ALS and mapped factors; the real TF-IDF features of ``info``; WARM_START weights."""
    import json

    import numpy as np
    import scipy.sparse as sp

    from recommendations.engine.blend import PRODUCT_BLEND, WARM_START
    from recommendations.engine.content import ItemContent

    item_ids = np.sort(active)
    n, f = item_ids.size, PRODUCT_BLEND["als_factors"]
    cols = np.searchsorted(item_ids, matrix.item_ids)
    head = cols[np.argsort(-matrix.item_counts, kind="stable")[: PRODUCT_BLEND["ease_max_items"]]]
    keep = PRODUCT_BLEND["ease_keep"]
    rows = np.repeat(np.sort(head), keep)
    ease = sp.csr_matrix(
        (rng.normal(0, 0.02, rows.size), (rows, rng.choice(head, rows.size))), shape=(n, n)
    )
    ease.sum_duplicates()
    y = rng.normal(0, 0.3, (n, f)).astype(np.float32)
    features = (
        ItemContent()
        .fit(type("M", (), {"item_ids": item_ids})(), info=info)
        .features_.astype(np.float32)
    )
    weights = {"few": dict(WARM_START), "many": dict(WARM_START)}
    config = {
        "weights": weights,
        "validation": dict.fromkeys(weights),
        "few_max": 10,
        "als": {"factors": f, "regularization": 10.0, "alpha": 1.0, "weighting": "liked"},
        "content_weighting": "liked",
        "ease_weighting": "rating",
    }
    return {
        "item_ids": item_ids,
        "warm": np.isin(item_ids, matrix.item_ids),
        "ease_indptr": ease.indptr.astype(np.int64),
        "ease_indices": ease.indices.astype(np.int32),
        "ease_data": ease.data.astype(np.float32),
        "als_items": y,
        "als_gram": y.astype(np.float64).T @ y.astype(np.float64),
        "mapped": rng.normal(0, 0.3, (n, f)).astype(np.float32),
        "content_indptr": features.indptr.astype(np.int64),
        "content_indices": features.indices.astype(np.int32),
        "content_data": features.data.astype(np.float32),
        "content_shape": np.array(features.shape, dtype=np.int64),
        "pop": rng.normal(0, 1, n).astype(np.float32),
        "config": np.frombuffer(json.dumps(config).encode(), dtype=np.uint8),
    }


def _shaped_neighbours(n_users: int, k: int, rng):
    """Random user-user lists: ``k`` other users each, positive falling scores."""
    import numpy as np

    from recommendations.engine import Neighbours

    indices = rng.integers(0, n_users, (n_users, k)).astype(np.int32)
    scores = np.sort(rng.random((n_users, k)).astype(np.float32), axis=1)[:, ::-1]
    return Neighbours(indices, np.ascontiguousarray(scores), np.ones_like(indices), kind="user")


def main() -> None:
    import django

    django.setup()
    import numpy as np

    from recommendations import build, model_scoring
    from recommendations.engine import Neighbours
    from recommendations.engine.blend import WARM_START

    parser = argparse.ArgumentParser()
    parser.add_argument("--ratings", default="1M", choices=sorted(SIZES | SHAPED))
    parser.add_argument("--users", type=int, default=2000, help="0: every user")
    parser.add_argument("--batch", type=int, default=None, help="users a block")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--only", choices=["per_user", "batched", "live"])
    parser.add_argument("--shaped", action="store_true", help="random parts, no fit")
    parser.add_argument("--profile", action="store_true", help="cProfile the batched run")
    args = parser.parse_args()
    shaped = args.shaped or args.ratings in SHAPED
    var = ROOT / "var" / "bench"
    parts_file = var / f"ready-parts-{args.ratings}.npz"
    uu_file = var / f"ready-uu-{args.ratings}.npz"
    out = ROOT / "bench" / "out" / f"ready-stage-{args.ratings}{'-shaped' * shaped}.json"

    matrix, active, info = _synthetic(args.ratings)
    if shaped:  # the stage reads the ratings only (no fit here)
        inputs = types.SimpleNamespace(matrix=matrix)
    else:
        arrays = synthetic_inputs.snapshot_arrays(matrix)
        inputs = build.ModelInputs.from_snapshot(arrays)
    if shaped:
        rng = np.random.default_rng(2)
        parts_arrays = _shaped_parts(matrix, active, info, rng)
        uu = _shaped_neighbours(matrix.n_users, build.option("USER_K"), rng)
    elif args.reuse:
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

    live_ms, live_cpu_ms = [], []

    def live():
        """The live path's ranking of each user, as reads.recommendations_for_user runs it
        on a first read (ranking.rank_from_store less its Redis reads): the user's
        ratings scored by the model one user at a time (ModelParts.score), then the
        ranking the stage and the live path share (ranking.rank, via build)."""
        csr = matrix.csr
        for u in range(n):
            began, began_cpu = time.perf_counter(), time.process_time()
            lo, hi = csr.indptr[u], csr.indptr[u + 1]
            scored = parts.score(matrix.item_ids[csr.indices[lo:hi]], csr.data[lo:hi])
            build._ready_list(inputs, lists, u, scored)  # the stage's ranking, one user
            live_ms.append((time.perf_counter() - began) * 1000)
            live_cpu_ms.append((time.process_time() - began_cpu) * 1000)
        return {}

    result = {"size": args.ratings, "users_total": int(matrix.n_users), "users_measured": n}
    result["shaped"] = shaped
    written = {}
    for name, run in (("per_user", per_user), ("batched", batched), ("live", live)):
        if args.only not in (None, name):
            continue
        wall, cpu = time.perf_counter(), time.process_time()
        if args.profile and name == "batched":
            import cProfile
            import pstats

            with cProfile.Profile() as profile:
                written[name] = run()
            stats = pstats.Stats(profile, stream=sys.stderr)
            stats.sort_stats("cumulative").print_stats(30)
            stats.sort_stats("tottime").print_stats(25)
        else:
            written[name] = run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        result[f"{name}_cpu_s"] = round(cpu, 2)
        result[f"{name}_wall_s"] = round(wall, 2)
        result[f"{name}_cpu_ms_per_user"] = round(cpu / n * 1000, 3)
        result[f"{name}_projected_cpu_s"] = round(cpu / n * matrix.n_users, 1)
    if live_ms:
        result["live_wall_ms_p50"] = round(float(np.percentile(live_ms, 50)), 2)
        result["live_wall_ms_p99"] = round(float(np.percentile(live_ms, 99)), 2)
        result["live_wall_ms_max"] = round(float(np.max(live_ms)), 2)
        # (CPU: what a busy machine's wall clock hides under its waiting)
        result["live_cpu_ms_p50"] = round(float(np.percentile(live_cpu_ms, 50)), 2)
        result["live_cpu_ms_p99"] = round(float(np.percentile(live_cpu_ms, 99)), 2)
    result["activity"] = _activity(args.ratings, result)
    result["code"] = os.environ.get("BENCH_CODE", str(ROOT))
    result["lists"] = len(next(iter(written.values())))
    if "per_user" in written and "batched" in written:
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


def _activity(size: str, result: dict) -> dict:
    """Users active within READY_ACTIVE_DAYS (and a few other windows) of the newest
    rating in ``bench/scale.py``'s synthetic data of ``size``, the users the stage stores
    then (READY_MAX_USERS), and its projected CPU seconds at the batched cost a user."""
    import numpy as np

    from recommendations.conf import get as option
    from recommendations.engine.synthetic import SIZES as SCALE_SIZES
    from recommendations.engine.synthetic import generate

    if size not in SCALE_SIZES or "BENCH_CODE" in os.environ:  # (another checkout's conf)
        return {}
    users, _, _ = generate(*SCALE_SIZES[size], seed=0)
    # bench/scale.py's ratings_csv: "Times spread over 2000-2019, in no particular order"
    stamps = 946_684_800 + np.random.default_rng(1).integers(0, 600_000_000, users.size)
    newest = np.full(int(users.max()) + 1, np.iinfo(np.int64).min)
    np.maximum.at(newest, users, stamps)
    cap = option("READY_MAX_USERS")
    per_user_ms = result.get("batched_cpu_ms_per_user")
    out = {"users": int(np.unique(users).size), "cap": cap}
    for days in sorted({7, 30, 90, option("READY_ACTIVE_DAYS") or 0} - {0}):
        active = int((newest >= stamps.max() - days * 86_400).sum())
        stored = min(active, cap) if cap else active
        out[f"{days}d"] = {"active": active, "stored": stored}
        if per_user_ms:
            out[f"{days}d"]["stage_cpu_s"] = round(stored * per_user_ms / 1000, 1)
    return out


if __name__ == "__main__":
    main()
