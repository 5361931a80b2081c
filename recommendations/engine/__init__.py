"""Collaborative-filtering engine: plain numpy/scipy (+ numba kernels), no Django.

Public API is re-exported here; see each module for array shapes and definitions.
"""

from .fallbacks import best_rated, damped_means, most_popular
from .matrix import Baselines, RatingMatrix
from .predict import Prediction, predict, predict_batch
from .similarity import MEASURES, Neighbours, compute_neighbours, concat_neighbours
from .topn import Recommendations, bm25_weight, recommend, recommend_batch

__all__ = [
    "MEASURES",
    "Baselines",
    "Neighbours",
    "Prediction",
    "RatingMatrix",
    "Recommendations",
    "best_rated",
    "bm25_weight",
    "compute_neighbours",
    "concat_neighbours",
    "damped_means",
    "most_popular",
    "predict",
    "predict_batch",
    "recommend",
    "recommend_batch",
]
