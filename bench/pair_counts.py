"""Pair visits of the neighbour passes at synthetic sizes (numpy only, no kernel run):
the row path's (each pair from both sides: the sum of squared column counts) and the
symmetric pass's work (``similarity.pair_work``: each pair once, plus dense-row scans).

    python bench/pair_counts.py 1M 10M
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommendations.engine import RatingMatrix  # noqa: E402
from recommendations.engine.similarity import pair_work  # noqa: E402
from recommendations.engine.synthetic import SIZES, generate  # noqa: E402

for size in sys.argv[1:] or ["1M", "10M"]:
    m = RatingMatrix.from_arrays(*generate(*SIZES[size], seed=0))
    item_counts = np.diff(m.csc.indptr).astype(np.float64)
    user_counts = np.diff(m.csr.indptr).astype(np.float64)
    print(
        f"{size}: {m.n_users} users x {m.n_items} items, {m.nnz} ratings; "
        f"user-user row path {np.square(item_counts).sum():.3e} visits, symmetric "
        f"{pair_work(m, kind='user').sum():.3e}; item-item row path "
        f"{np.square(user_counts).sum():.3e}, symmetric {pair_work(m, kind='item').sum():.3e}",
        flush=True,
    )
