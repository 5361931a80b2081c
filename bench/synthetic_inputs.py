"""The synthetic inputs the recompute-stage benchmarks share (``model_stage.py``,
``rating_stage.py``, ``ready_stage.py``, ``stages.py``): MovieLens-shaped ratings from
``recommendations.engine.synthetic`` at a named size, random side information for the
items, and the snapshot arrays the recompute's stages read.

Imports of the project happen inside the functions, after the caller has set up its
``sys.path`` (``ready_stage.py`` can point it at another checkout) and Django.
"""

SIZES = {
    "1M": (1_000_000, 6_040, 3_700),
    "10M": (10_000_000, 70_000, 10_700),
    "25M": (25_000_000, 162_000, 62_000),  # MovieLens-25M's shape
}
GENRES = ["Action", "Comedy", "Drama", "Sci-Fi", "Romance", "Horror", "Thriller"]
GENRES += ["Documentary", "Animation", "Crime", "Fantasy", "Western"]
WORDS = ["night", "love", "dark", "return", "city", "star", "house", "war", "king", "road"]


def ratings(size: str):
    """The ``RatingMatrix`` of ``size`` (database-like ids from 1)."""
    import numpy as np

    from recommendations.engine import RatingMatrix
    from recommendations.engine.synthetic import generate

    n_ratings, n_users, n_items = SIZES[size]
    u, i, r = generate(n_ratings, n_users, n_items)
    return RatingMatrix.from_arrays(u.astype(np.int64) + 1, i.astype(np.int64) + 1, r)


def with_unrated(matrix):
    """The rated items' ids and 2% more ids of active items nobody has rated."""
    import numpy as np

    n_cold = max(1, matrix.n_items // 50)
    return np.r_[matrix.item_ids, matrix.item_ids.max() + 1 + np.arange(n_cold)]


def side_info(ids, rng, *, titles: bool = True):
    """Random genres (1-3 of 12), years and (with ``titles``) three-word titles, drawn
    from ``rng`` in a fixed order."""
    from recommendations.engine.data import ItemInfo

    return ItemInfo(
        item_ids=ids,
        titles=[" ".join(rng.choice(WORDS, 3)) if titles else "" for _ in ids],
        years=rng.integers(1950, 2024, ids.size).astype(float),
        genres=[list(rng.choice(GENRES, rng.integers(1, 4), replace=False)) for _ in ids],
        tags=[[] for _ in ids],
    )


def snapshot_arrays(matrix, *, times: bool = True) -> dict:
    """The arrays a version's snapshot holds, as the recompute's stages read them; with
    ``times``, the rating times the model stage reads (``rating_times``)."""
    from recommendations.build import matrix_arrays

    out = matrix_arrays(matrix)
    if times:
        out["times"] = rating_times(matrix)
    return out


def rating_times(matrix):
    """uint32 (nnz,) seconds aligned with the CSR data, as ``build.snapshot_ratings``
    stores them: each user arrives on a day drawn over three years and rates over the
    following weeks (exponential gaps, mean 30 days from arrival), seed 0."""
    import numpy as np

    rng = np.random.default_rng(0)
    day = 86_400.0
    arrive = rng.uniform(0, 3 * 365 * day, matrix.n_users)
    owner = np.repeat(np.arange(matrix.n_users), np.diff(matrix.csr.indptr))
    when = 1_500_000_000 + arrive[owner] + rng.exponential(30 * day, matrix.nnz)
    return when.astype(np.uint32)
