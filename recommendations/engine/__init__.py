"""Collaborative-filtering engine: plain numpy/scipy (+ numba kernels), no Django.

Public API is re-exported here; see each module for array shapes and definitions.
"""

from .matrix import Baselines, RatingMatrix
from .similarity import MEASURES, Neighbours, compute_neighbours, concat_neighbours

__all__ = [
    "MEASURES",
    "Baselines",
    "Neighbours",
    "RatingMatrix",
    "compute_neighbours",
    "concat_neighbours",
]
