"""Compiled (numba) kernels. Private: call them through similarity.py / predict.py.

All kernels are exact; parallel ones split rows over threads and never share mutable
state between threads, so results do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Similarity accumulation modes.
MODE_DOT = 0  # sum(x*y) scaled by precomputed full-vector inverse norms
MODE_CORATED_COSINE = 1  # sum(x*y) / sqrt(sum(x^2) * sum(y^2)), sums over co-rated entries
MODE_PEARSON = 2  # exact Pearson over co-rated entries (means of the co-rated entries)


@njit(cache=True, inline="always")
def _heap_free_topk(cand_j, cand_s, m, k, out_idx, out_sc, out_sup, row, cand_n):
    """Write the k best of cand_*[:m] into out_*[row]: higher score first, then lower index."""
    if m == 0:
        return
    js = cand_j[:m]
    ss = cand_s[:m]
    if m > k:
        thr = np.partition(ss.copy(), m - k)[m - k]
        keep = 0
        for t in range(m):
            if ss[t] >= thr:
                keep += 1
        sel = np.empty(keep, dtype=np.int64)
        keep = 0
        for t in range(m):
            if ss[t] >= thr:
                sel[keep] = t
                keep += 1
    else:
        sel = np.arange(m)
    # order by index first, then a stable sort on -score gives (score desc, index asc)
    o1 = np.argsort(js[sel], kind="mergesort")
    sel = sel[o1]
    o2 = np.argsort(-ss[sel], kind="mergesort")
    sel = sel[o2]
    n_out = min(k, sel.size)
    for t in range(n_out):
        c = sel[t]
        out_idx[row, t] = js[c]
        out_sc[row, t] = ss[c]
        out_sup[row, t] = cand_n[c]


@njit(cache=True, parallel=True)
def topk_similar_rows(
    a_indptr,
    a_indices,
    a_data,
    t_indptr,
    t_indices,
    t_data,
    start,
    stop,
    n_cols,
    k,
    mode,
    inv_norm,
    shrinkage,
    min_support,
    exclude_self,
    n_chunks,
):
    """Top-k most similar rows of A for rows ``start..stop-1`` against all rows of A.

    A is given as CSR (a_*), rows x features; its transpose as CSR (t_*), features x rows.
    For row i every row j sharing a feature is visited once per shared feature, so the
    work is sum over features of (row count)^2 restricted to the shard, and memory per
    thread is a few dense vectors of length n_cols.

    Returns (indices int32 (n, k) padded -1, scores float64 (n, k) padded NaN,
    support int32 (n, k) padded 0).
    """
    n = stop - start
    out_idx = np.full((n, k), -1, dtype=np.int32)
    out_sc = np.full((n, k), np.nan, dtype=np.float64)
    out_sup = np.zeros((n, k), dtype=np.int32)
    for c in prange(n_chunks):
        cnt = np.zeros(n_cols, dtype=np.int32)
        sxy = np.zeros(n_cols, dtype=np.float64)
        if mode != MODE_DOT:
            sxx = np.zeros(n_cols, dtype=np.float64)
            syy = np.zeros(n_cols, dtype=np.float64)
        else:
            sxx = np.zeros(1, dtype=np.float64)
            syy = np.zeros(1, dtype=np.float64)
        if mode == MODE_PEARSON:
            sx = np.zeros(n_cols, dtype=np.float64)
            sy = np.zeros(n_cols, dtype=np.float64)
        else:
            sx = np.zeros(1, dtype=np.float64)
            sy = np.zeros(1, dtype=np.float64)
        touched = np.empty(n_cols, dtype=np.int64)
        cand_j = np.empty(n_cols, dtype=np.int64)
        cand_s = np.empty(n_cols, dtype=np.float64)
        cand_n = np.empty(n_cols, dtype=np.int32)
        # interleaved rows balance the load: row costs are very uneven (popular rows)
        for r in range(c, n, n_chunks):
            i = start + r
            m = 0
            for p in range(a_indptr[i], a_indptr[i + 1]):
                f = a_indices[p]
                x = a_data[p]
                if mode == MODE_DOT:
                    for q in range(t_indptr[f], t_indptr[f + 1]):
                        j = t_indices[q]
                        if cnt[j] == 0:
                            touched[m] = j
                            m += 1
                        cnt[j] += 1
                        sxy[j] += x * t_data[q]
                elif mode == MODE_CORATED_COSINE:
                    xx = x * x
                    for q in range(t_indptr[f], t_indptr[f + 1]):
                        j = t_indices[q]
                        y = t_data[q]
                        if cnt[j] == 0:
                            touched[m] = j
                            m += 1
                        cnt[j] += 1
                        sxy[j] += x * y
                        sxx[j] += xx
                        syy[j] += y * y
                else:
                    xx = x * x
                    for q in range(t_indptr[f], t_indptr[f + 1]):
                        j = t_indices[q]
                        y = t_data[q]
                        if cnt[j] == 0:
                            touched[m] = j
                            m += 1
                        cnt[j] += 1
                        sxy[j] += x * y
                        sxx[j] += xx
                        syy[j] += y * y
                        sx[j] += x
                        sy[j] += y
            nc = 0
            for t in range(m):
                j = touched[t]
                nn = cnt[j]
                ok = nn >= min_support and not (exclude_self and j == i)
                if ok:
                    if mode == MODE_DOT:
                        d = inv_norm[i] * inv_norm[j]
                        ok = d > 0.0
                        s = sxy[j] * d
                    elif mode == MODE_CORATED_COSINE:
                        d = sxx[j] * syy[j]
                        ok = d > 0.0
                        s = sxy[j] / np.sqrt(d) if ok else 0.0
                    else:
                        d = (nn * sxx[j] - sx[j] * sx[j]) * (nn * syy[j] - sy[j] * sy[j])
                        ok = d > 0.0
                        s = (nn * sxy[j] - sx[j] * sy[j]) / np.sqrt(d) if ok else 0.0
                    if ok and shrinkage > 0.0:
                        s = s * nn / (nn + shrinkage)
                    if ok and np.isfinite(s):
                        cand_j[nc] = j
                        cand_s[nc] = s
                        cand_n[nc] = nn
                        nc += 1
                cnt[j] = 0
                sxy[j] = 0.0
                if mode != MODE_DOT:
                    sxx[j] = 0.0
                    syy[j] = 0.0
                if mode == MODE_PEARSON:
                    sx[j] = 0.0
                    sy[j] = 0.0
            _heap_free_topk(cand_j, cand_s, nc, k, out_idx, out_sc, out_sup, r, cand_n)
    return out_idx, out_sc, out_sup


@njit(cache=True, parallel=True)
def knn_predict(
    targets,
    lookups,
    base,
    nb_idx,
    nb_sc,
    nb_offset,
    l_indptr,
    l_indices,
    l_resid,
    k,
    min_k,
):
    """Neighbourhood predictions for many pairs.

    For pair t: walk the neighbour list of row ``targets[t]`` (best first), keep the
    neighbours present in lookup row ``lookups[t]`` of the CSR structure l_* (sorted
    indices), up to k of them with positive similarity, and return
    ``base[t] + sum(sim * resid) / sum(sim)`` (just ``base[t]`` when fewer than min_k).

    Returns (estimates float64 (n,), actual_k int32 (n,)).
    """
    n = targets.shape[0]
    est = base.copy()
    used = np.zeros(n, dtype=np.int32)
    kk = nb_idx.shape[1]
    for t in prange(n):
        row = targets[t] - nb_offset
        look = lookups[t]
        if row < 0 or row >= nb_idx.shape[0] or look < 0:
            continue
        lo0 = l_indptr[look]
        hi0 = l_indptr[look + 1]
        ssim = 0.0
        sacc = 0.0
        taken = 0
        for r in range(kk):
            j = nb_idx[row, r]
            if j < 0:
                break
            s = nb_sc[row, r]
            if not s > 0.0:
                break
            lo = lo0
            hi = hi0
            while lo < hi:
                mid = (lo + hi) >> 1
                if l_indices[mid] < j:
                    lo = mid + 1
                else:
                    hi = mid
            if lo < hi0 and l_indices[lo] == j:
                ssim += s
                sacc += s * l_resid[lo]
                taken += 1
                if taken == k:
                    break
        used[t] = taken
        if taken >= min_k and ssim > 0.0:
            est[t] += sacc / ssim
    return est, used


@njit(cache=True)
def baseline_sgd(rows, cols, data, mu, bu, bi, n_epochs, lr, reg):
    """In-place SGD on user/item biases over the ratings in the given order."""
    for _ in range(n_epochs):
        for p in range(data.shape[0]):
            u = rows[p]
            i = cols[p]
            err = data[p] - (mu + bu[u] + bi[i])
            bu[u] += lr * (err - reg * bu[u])
            bi[i] += lr * (err - reg * bi[i])
