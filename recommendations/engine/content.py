"""Content similarity from side information (genres, year, title words, tags): TF-IDF.

Each item becomes a bag of tokens: ``g:<genre>``, ``d:<decade>``, ``y:<5-year bin>``,
``w:<title word>`` (lower case, at least 3 letters, in at least ``min_df`` titles) and
``t:<tag>``. Weights are TF-IDF with binary term frequency and the smoothed idf
``log((1 + n) / (1 + df)) + 1``, scaled per field, rows L2-normalised, so the dot product
of two rows is their cosine similarity. (Hand-written rather than scikit-learn's
``TfidfVectorizer``: the whole model is a dozen lines on scipy.sparse, and scikit-learn is
not otherwise a dependency.)

Nothing here needs a rating, which is the point: an item added a minute ago has a row, so
it has "similar items" and can be scored for a user from the items the user liked.
:func:`ridge_map` carries a per-item target that ratings define (item factors, popularity)
over to items without ratings through their content row.
"""

from __future__ import annotations

import math
import re

import numpy as np
import scipy.sparse as sp

from .data import ItemInfo
from .matrix import RatingMatrix

__all__ = ["ItemContent", "item_tokens", "ridge_map"]

_WORD = re.compile(r"[a-z0-9']{3,}")
_STOP = frozenset(
    ("the", "and", "for", "with", "from", "that", "this", "are", "was", "his", "her", "its")
)


def item_tokens(info: ItemInfo, k: int) -> dict:
    """Field -> tokens of item row ``k`` (before document-frequency filtering)."""
    out = {"genre": [f"g:{g.lower()}" for g in info.genres[k]], "year": [], "title": [], "tag": []}
    y = info.years[k]
    if not math.isnan(y):
        out["year"] = [f"d:{int(y) // 10 * 10}", f"y:{int(y) // 5 * 5}"]
    words = {w for w in _WORD.findall(info.titles[k].lower()) if w not in _STOP}
    out["title"] = [f"w:{w}" for w in sorted(words)]
    out["tag"] = sorted({f"t:{t}" for t in info.tags[k]})
    return out


class ItemContent:
    """TF-IDF item features and the scores they give.

    Learned state: ``features_`` CSR float64 (n_items, n_tokens) with unit-norm rows (a
    row with no tokens is zero), ``vocabulary_`` list of tokens by column.
    """

    def __init__(
        self,
        *,
        genre_weight: float = 1.0,
        year_weight: float = 0.5,
        title_weight: float = 0.5,
        tag_weight: float = 1.0,
        min_df: int = 2,
        weighting: str = "liked",
    ):
        self.genre_weight = genre_weight
        self.year_weight = year_weight
        self.title_weight = title_weight
        self.tag_weight = tag_weight
        self.min_df = min_df
        self.weighting = weighting

    def fit(self, matrix: RatingMatrix, *, info: ItemInfo) -> ItemContent:
        """Features for every column of ``matrix`` (``info`` is looked up by item id; items
        missing from ``info`` get a zero row). Ratings are not used."""
        info = info.subset(matrix.item_ids)
        weight = {
            "genre": self.genre_weight,
            "year": self.year_weight,
            "title": self.title_weight,
            "tag": self.tag_weight,
        }
        docs = [item_tokens(info, k) for k in range(len(info.titles))]
        df: dict[str, int] = {}
        for d in docs:
            for toks in d.values():
                for t in toks:
                    df[t] = df.get(t, 0) + 1
        vocab = sorted(t for t, c in df.items() if c >= self.min_df or t[0] in "gd")
        col = {t: j for j, t in enumerate(vocab)}
        n = len(docs)
        rows, cols, vals = [], [], []
        for r, d in enumerate(docs):
            for field, toks in d.items():
                for t in toks:
                    if t in col:
                        rows.append(r)
                        cols.append(col[t])
                        vals.append(weight[field] * (math.log((1 + n) / (1 + df[t])) + 1.0))
        f = sp.csr_matrix((vals, (rows, cols)), shape=(n, len(vocab)), dtype=np.float64)
        norms = np.sqrt(np.asarray(f.multiply(f).sum(axis=1)).ravel())
        f = sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ f
        self.features_ = sp.csr_matrix(f)
        self.vocabulary_ = vocab
        return self

    def similar(self, item: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """(item indices, cosine similarities) of the ``n`` items most like ``item``."""
        sims = np.asarray((self.features_ @ self.features_[item].T).todense()).ravel()
        sims[item] = -np.inf
        top = np.argsort(-sims, kind="stable")[:n]
        keep = sims[top] > 0
        return top[keep], sims[top][keep]

    def score(self, rows) -> np.ndarray:
        """float64 (n_rows, n_items): sum over the user's rated items of
        ``w(r) * cosine(item, rated item)``; ``w`` is ``max(r - 3, 0)`` for ``liked``
        (only 4-5 stars count) or ``r - user mean`` for ``centred``."""
        rows = sp.csr_matrix(rows, dtype=np.float64)
        w = rows.copy()
        if self.weighting == "liked":
            w.data = np.maximum(w.data - 3.0, 0.0)
        elif self.weighting == "centred":
            cnt = np.maximum(np.diff(rows.indptr), 1)
            means = np.asarray(rows.sum(axis=1)).ravel() / cnt
            w.data = w.data - np.repeat(means, np.diff(rows.indptr))
        else:
            raise ValueError(f"unknown weighting {self.weighting!r}")
        profile = w @ self.features_
        return np.asarray((profile @ self.features_.T).todense())


def ridge_map(features, target, known, *, lam: float = 1.0) -> np.ndarray:
    """Ridge regression from content rows to a per-item target, applied to every item.

    Args:
        features: CSR (n_items, n_tokens) content rows.
        target: float (n_items,) or (n_items, m) values, meaningful where ``known``.
        known: bool (n_items,) items to fit on (those with ratings).
    Returns:
        float64 array shaped like ``target``: ``[1, f_i] @ W`` for every item, with ``W``
        minimising ``|[1, F_known] W - target_known|^2 + lam |W_without_intercept|^2``.
    """
    x = sp.hstack([np.ones((features.shape[0], 1)), features]).tocsr()
    xk = x[np.flatnonzero(known)]
    reg = lam * np.eye(x.shape[1])
    reg[0, 0] = 0.0
    tk = np.asarray(target, dtype=np.float64)[known]
    w = np.linalg.solve((xk.T @ xk).toarray() + reg, xk.T @ tk)
    return x @ w
