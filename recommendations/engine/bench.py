"""Neighbour-computation benchmark: ``python -m recommendations.engine.bench``.

For each data set and direction (item-item, user-user) it times our exact top-K
(``compute_neighbours``, cosine, K=50 by default) and implicit's ``CosineRecommender``
(K=50, all threads) on the same matrix in the same run, each in its own child process so
that the peak resident memory (``ru_maxrss`` of the child, which includes loading the data)
is measured separately. Times exclude loading and building the matrix and numba's one-off
compilation (cached on disk), and include everything else (normalisation, transposes).
Both wall-clock seconds and CPU seconds (all threads) are reported: on a busy shared
machine the wall-clock ratio mostly measures the scheduler, the CPU ratio the work.

Data sets: ``ml100k`` (MovieLens u.data), synthetic ``1M``, ``10M``, ``25M`` (see
synthetic.py; generated once with a fixed seed and cached as ``bench/out/synthetic-*.npz``),
or any ``--data FILE`` (CSV ``user,item,rating[,timestamp]`` or .npz ``user``, ``item``,
``rating``). With no arguments the full suite runs (minutes; the 25M user-user runs take
the longest). ``--quick`` runs ml100k and 1M only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .data import REPO_ROOT, default_ml100k_dir, read_ratings
from .synthetic import SIZES, generate

OUT_DIR = REPO_ROOT / "bench" / "out"
FULL = ["ml100k", "1M", "10M", "25M"]
QUICK = ["ml100k", "1M"]


def dataset_path(name: str) -> Path:
    """Path of a data set's ratings file, generating synthetic ones on first use."""
    if name == "ml100k":
        return default_ml100k_dir() / "u.data"
    if name in SIZES:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        path = OUT_DIR / f"synthetic-{name}.npz"
        if not path.exists():
            u, i, r = generate(*SIZES[name], seed=0)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, user=u, item=i, rating=r)
            tmp.replace(path)
        return path
    return Path(name)


# -- child: one timed measurement ---------------------------------------------------------
def _child(spec: dict) -> dict:
    import scipy.sparse as sp

    u, i, r = read_ratings(spec["data"])
    if spec["lib"] == "ours":
        from .matrix import RatingMatrix
        from .similarity import compute_neighbours

        # compile (or load the cached compilation) outside the timing
        tiny = RatingMatrix.from_arrays([0, 0, 1], [0, 1, 1], [1.0, 2.0, 3.0])
        compute_neighbours(tiny, kind=spec["kind"], measure=spec["measure"], k=2)
        m = RatingMatrix.from_arrays(u, i, r)
        del u, i, r
        c0 = time.process_time()
        t0 = time.perf_counter()
        nb = compute_neighbours(
            m,
            kind=spec["kind"],
            measure=spec["measure"],
            k=spec["k"],
            shrinkage=spec["shrinkage"],
        )
        secs = time.perf_counter() - t0
        cpu = time.process_time() - c0
        return {"seconds": secs, "cpu_seconds": cpu, "rows": nb.n_rows, "nnz": int(m.nnz)}
    from implicit.nearest_neighbours import CosineRecommender

    uid, uinv = np.unique(u, return_inverse=True)
    iid, iinv = np.unique(i, return_inverse=True)
    X = sp.csr_matrix((r.astype(np.float32), (uinv, iinv)), shape=(uid.size, iid.size))
    del u, i, r, uinv, iinv
    if spec["kind"] == "user":
        X = X.T.tocsr()
    model = CosineRecommender(K=spec["k"], num_threads=0)
    c0 = time.process_time()
    t0 = time.perf_counter()
    model.fit(X, show_progress=False)
    secs = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return {
        "seconds": secs,
        "cpu_seconds": cpu,
        "rows": int(model.similarity.shape[0]),
        "nnz": int(X.nnz),
    }


def measure(
    spec: dict, timeout: float | None = None, module: str = "recommendations.engine.bench"
) -> dict:
    """Run one measurement in a child process (``python -m module --child SPEC``); adds
    ``peak_gib`` (child max RSS)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--child", json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=str(REPO_ROOT),
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"error": f"timeout after {timeout} s"}
    if proc.returncode != 0:
        return {"error": err.strip().splitlines()[-1] if err.strip() else "failed"}
    return json.loads(out.strip().splitlines()[-1])


def _peak_gib() -> float:
    """This process's peak RSS (VmHWM). Unlike ru_maxrss it is reset by exec, so it does not
    inherit the parent's size at fork."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _child_main(spec_json: str) -> int:
    res = _child(json.loads(spec_json))
    res["peak_gib"] = _peak_gib()
    print(json.dumps(res))
    return 0


# -- parent -------------------------------------------------------------------------------
def run(names, kinds, *, k, measure_name, shrinkage, with_implicit, timeout, log=None):
    rows = []
    for name in names:
        path = dataset_path(name)
        if not path.exists():
            rows.append({"dataset": name, "error": f"{path} not found"})
            continue
        for kind in kinds:
            row = {"dataset": name, "kind": kind, "measure": measure_name, "k": k}
            base = {"data": str(path), "kind": kind, "k": k}
            ours = measure(
                base | {"lib": "ours", "measure": measure_name, "shrinkage": shrinkage}, timeout
            )
            row["nnz"] = ours.get("nnz")
            row["ours_seconds"] = ours.get("seconds")
            row["ours_cpu_seconds"] = ours.get("cpu_seconds")
            row["ours_peak_gib"] = ours.get("peak_gib")
            if "error" in ours:
                row["ours_error"] = ours["error"]
            if with_implicit:
                imp = measure(base | {"lib": "implicit"}, timeout)
                row["implicit_seconds"] = imp.get("seconds")
                row["implicit_cpu_seconds"] = imp.get("cpu_seconds")
                row["implicit_peak_gib"] = imp.get("peak_gib")
                if "error" in imp:
                    row["implicit_error"] = imp["error"]
                if row["ours_seconds"] and row["implicit_seconds"]:
                    row["ratio"] = row["ours_seconds"] / row["implicit_seconds"]
                if row["ours_cpu_seconds"] and row["implicit_cpu_seconds"]:
                    row["cpu_ratio"] = row["ours_cpu_seconds"] / row["implicit_cpu_seconds"]
            rows.append(row)
            if log:
                log(row)
    return rows


def format_table(rows) -> str:
    cols = [
        ("dataset", "dataset", "{}"),
        ("nnz", "ratings", "{:,}"),
        ("kind", "kind", "{}"),
        ("ours_seconds", "ours s", "{:.2f}"),
        ("ours_peak_gib", "ours GiB", "{:.2f}"),
        ("implicit_seconds", "implicit s", "{:.2f}"),
        ("implicit_peak_gib", "implicit GiB", "{:.2f}"),
        ("ratio", "ours/implicit", "{:.2f}x"),
        ("ours_cpu_seconds", "ours cpu s", "{:.2f}"),
        ("implicit_cpu_seconds", "implicit cpu s", "{:.2f}"),
        ("cpu_ratio", "cpu ratio", "{:.2f}x"),
    ]
    cells = [
        [("" if r.get(key) is None else fmt.format(r[key])) for key, _, fmt in cols] for r in rows
    ]
    heads = [h for _, h, _ in cols]
    widths = [
        max(len(h), *(len(c[j]) for c in cells)) if cells else len(h) for j, h in enumerate(heads)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)) for cell in cells]
    errors = [
        f"{r['dataset']} {r.get('kind', '')}: {r.get(k)}"
        for r in rows
        for k in ("error", "ours_error", "implicit_error")
        if r.get(k)
    ]
    return "\n".join(lines + errors)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m recommendations.engine.bench", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument(
        "--data",
        action="append",
        help="ratings file (CSV or .npz); repeatable; replaces the default sets",
    )
    ap.add_argument("--sizes", help=f"comma-separated data sets from {FULL}")
    ap.add_argument("--quick", action="store_true", help=f"only {QUICK}")
    ap.add_argument("--kinds", default="item,user", help="item,user (default both)")
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--measure", default="cosine")
    ap.add_argument("--shrinkage", type=float, default=0.0)
    ap.add_argument("--no-implicit", action="store_true", help="skip implicit")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per measurement")
    ap.add_argument("--json", action="store_true", help="one JSON object per measurement")
    args = ap.parse_args(argv)
    if args.child:
        return _child_main(args.child)
    if args.data:
        names = args.data
    elif args.sizes:
        names = [s.strip() for s in args.sizes.split(",") if s.strip()]
    else:
        names = QUICK if args.quick else FULL
    kinds = [x.strip() for x in args.kinds.split(",") if x.strip()]
    if not args.no_implicit:
        try:
            import implicit  # noqa: F401
        except ImportError:
            print(
                "implicit is not installed (pip install -r requirements-dev.txt)", file=sys.stderr
            )
            return 2

    def log(row):
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(f"# {row}", file=sys.stderr, flush=True)

    rows = run(
        names,
        kinds,
        k=args.k,
        measure_name=args.measure,
        shrinkage=args.shrinkage,
        with_implicit=not args.no_implicit,
        timeout=args.timeout,
        log=log,
    )
    if not args.json:
        print(format_table(rows))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit warns otherwise
    sys.exit(main())
