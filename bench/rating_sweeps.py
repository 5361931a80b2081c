"""ml100k-folds RMSE of the product's rating model (``FoldedFM``) per chain setting.

    python bench/rating_sweeps.py '[{"n_iter": 100, "burn_in": 20, "keep_every": 4}]'

Each JSON object overrides keys of ``engine.fm.PRODUCT_FM``; prints each fold's RMSE, then
one RESULT line per setting (mean, folds, CPU seconds of all five folds). Reads MovieLens
100k from ../shared/data/ml-100k (or evaluate's default place).
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from recommendations.engine.evaluate import (  # noqa: E402
    _load,
    default_ml100k_dir,
    read_ml100k_item_info,
)
from recommendations.engine.fm import PRODUCT_FM, FoldedFM  # noqa: E402
from recommendations.engine.matrix import RatingMatrix  # noqa: E402
from recommendations.engine.metrics import rmse  # noqa: E402


def main() -> None:
    data = default_ml100k_dir()
    if not (data / "u1.base").exists():
        sys.exit(f"MovieLens 100k not found in {data}")
    items = read_ml100k_item_info(data)
    for overrides in json.loads(sys.argv[1]):
        params = {**PRODUCT_FM, **overrides}
        errs = []
        cpu = time.process_time()
        for n in range(1, 6):
            tr, te = _load(data / f"u{n}.base"), _load(data / f"u{n}.test")
            train = RatingMatrix.from_arrays(*tr)
            est = FoldedFM(**params).fit(train, items=items)
            u, i = train.user_indices(te[0]), train.item_indices(te[1])
            errs.append(rmse(est.predict(u, i, item_ids=te[1]), te[2]))
            print(overrides, n, round(errs[-1], 4), flush=True)
        print(
            "RESULT", json.dumps(overrides), round(float(np.mean(errs)), 4),
            [round(e, 4) for e in errs], "cpu_s", round(time.process_time() - cpu, 1),
            flush=True,
        )  # fmt: skip


if __name__ == "__main__":
    main()
