"""Compiled (numba) kernels. Private: call them through similarity.py / predict.py.

All kernels are exact; parallel ones split rows over threads and never share mutable
state between threads, so results do not depend on the thread count. The long-running
neighbour kernels release the GIL, so a recompute's lock heartbeat thread runs meanwhile.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Similarity accumulation modes.
MODE_DOT = 0  # sum(x*y) scaled by precomputed full-vector inverse norms
MODE_CORATED_COSINE = 1  # sum(x*y) / sqrt(sum(x^2) * sum(y^2)), sums over co-rated entries
MODE_PEARSON = 2  # exact Pearson over co-rated entries (means of the co-rated entries)


@njit(cache=True)
def _worse(s1, j1, s2, j2):
    """True when candidate (s1, j1) ranks below (s2, j2): lower score, or tie and higher index."""
    return s1 < s2 or (s1 == s2 and j1 > j2)


@njit(cache=True)
def _offer(hs, hj, hn, hsize, thr_s, thr_j, row, k, s, j, n):
    """Offer (score s, index j, support n) to row's bounded min-heap (root = worst kept).

    hs, hj, hn: (rows, k) heap storage; hsize: (rows,) current sizes; thr_s, thr_j: (rows,)
    the root of each full heap (-inf while filling), a compact copy so that callers can
    reject most candidates without touching the heap (see _beats).
    """
    _offer_heap(hs, hj, hn, hsize, row, k, s, j, n)
    if hsize[row] == k:
        thr_s[row] = hs[row, 0]
        thr_j[row] = hj[row, 0]


@njit(cache=True, inline="always")
def _beats(thr_s, thr_j, row, s, j):
    """Would (s, j) enter row's heap? (compares with the cached root)."""
    t = thr_s[row]
    return s > t or (s == t and j < thr_j[row])


@njit(cache=True)
def _offer_heap(hs, hj, hn, hsize, row, k, s, j, n):
    size = hsize[row]
    if size < k:
        c = size
        hsize[row] = size + 1
        while c > 0:
            parent = (c - 1) >> 1
            if _worse(s, j, hs[row, parent], hj[row, parent]):
                hs[row, c] = hs[row, parent]
                hj[row, c] = hj[row, parent]
                hn[row, c] = hn[row, parent]
                c = parent
            else:
                break
        hs[row, c] = s
        hj[row, c] = j
        hn[row, c] = n
        return
    if not _worse(hs[row, 0], hj[row, 0], s, j):
        return
    c = 0
    while True:
        left = 2 * c + 1
        if left >= size:
            break
        child = left
        right = left + 1
        if right < size and _worse(hs[row, right], hj[row, right], hs[row, left], hj[row, left]):
            child = right
        if _worse(hs[row, child], hj[row, child], s, j):
            hs[row, c] = hs[row, child]
            hj[row, c] = hj[row, child]
            hn[row, c] = hn[row, child]
            c = child
        else:
            break
    hs[row, c] = s
    hj[row, c] = j
    hn[row, c] = n


@njit(cache=True)
def _emit(ss, jj, nn, m, k, out_idx, out_sc, out_sup, row):
    """Write the best k of the m candidates (ss, jj, nn) to out_*[row]: score desc, index asc."""
    if m == 0:
        return
    o1 = np.argsort(jj[:m], kind="mergesort")
    o2 = np.argsort(-ss[:m][o1], kind="mergesort")
    order = o1[o2]
    for t in range(min(m, k)):
        c = order[t]
        out_idx[row, t] = jj[c]
        out_sc[row, t] = ss[c]
        out_sup[row, t] = nn[c]


@njit(cache=True, inline="always")
def _score(mode, acc, b, nn, inv_i, inv_j, shrinkage):
    """Similarity from the accumulated sums at acc[b:]; NaN when undefined."""
    if mode == MODE_DOT:
        d = inv_i * inv_j
        if not d > 0.0:
            return np.nan
        s = acc[b] * d
    elif mode == MODE_CORATED_COSINE:
        d = acc[b + 1] * acc[b + 2]
        if not d > 0.0:
            return np.nan
        s = acc[b] / np.sqrt(d)
    else:
        sx = acc[b + 3]
        sy = acc[b + 4]
        d = (nn * acc[b + 1] - sx * sx) * (nn * acc[b + 2] - sy * sy)
        if not d > 0.0:
            return np.nan
        s = (nn * acc[b] - sx * sy) / np.sqrt(d)
    if shrinkage > 0.0:
        s = s * nn / (nn + shrinkage)
    return s


@njit(cache=True)
def _accumulate(mode, acc, w, x, t_indices, t_data, lo, hi):
    """Add entries lo..hi-1 of one feature's column (value x on this row) to the per-column
    sum records acc[j * w : (j + 1) * w] (sum xy, [sum xx, sum yy, [sum x, sum y]], count)."""
    cw = w - 1
    x = np.float64(x)
    if mode == MODE_DOT:
        for q in range(lo, hi):
            b = t_indices[q] * w
            acc[b] += x * np.float64(t_data[q])
            acc[b + cw] += 1.0
    elif mode == MODE_CORATED_COSINE:
        xx = x * x
        for q in range(lo, hi):
            b = t_indices[q] * w
            y = np.float64(t_data[q])
            acc[b] += x * y
            acc[b + 1] += xx
            acc[b + 2] += y * y
            acc[b + cw] += 1.0
    else:
        xx = x * x
        for q in range(lo, hi):
            b = t_indices[q] * w
            y = np.float64(t_data[q])
            acc[b] += x * y
            acc[b + 1] += xx
            acc[b + 2] += y * y
            acc[b + 3] += x
            acc[b + 4] += y
            acc[b + cw] += 1.0


@njit(cache=True)
def _first_above(t_indices, lo, hi, i):
    """Smallest q in [lo, hi) with t_indices[q] > i (indices sorted), else hi."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if t_indices[mid] <= i:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _row(
    i,
    upper,
    a_indptr,
    a_indices,
    a_data,
    t_indptr,
    t_indices,
    t_data,
    n_cols,
    mode,
    w,
    acc,
    touched,
    lo_q,
):
    """Accumulate row i against all columns (or only columns > i when ``upper``).

    Returns (dense, m): dense rows are finalised by a scan of all columns, sparse rows by
    the m entries of ``touched``.
    """
    cw = w - 1
    p0 = a_indptr[i]
    p1 = a_indptr[i + 1]
    work = 0
    for p in range(p0, p1):
        f = a_indices[p]
        lo = _first_above(t_indices, t_indptr[f], t_indptr[f + 1], i) if upper else t_indptr[f]
        lo_q[p - p0] = lo
        work += t_indptr[f + 1] - lo
    dense = work * 4 >= n_cols
    m = 0
    if not dense:
        # collect the touched columns first (a cheap pass), then accumulate
        for p in range(p0, p1):
            for q in range(lo_q[p - p0], t_indptr[a_indices[p] + 1]):
                j = t_indices[q]
                if acc[j * w + cw] == 0.0:
                    acc[j * w + cw] = -1.0
                    touched[m] = j
                    m += 1
        for t in range(m):
            acc[touched[t] * w + cw] = 0.0
    for p in range(p0, p1):
        f = a_indices[p]
        _accumulate(mode, acc, w, a_data[p], t_indices, t_data, lo_q[p - p0], t_indptr[f + 1])
    return dense, m


@njit(cache=True)
def _chunk(
    c,
    a_indptr,
    a_indices,
    a_data,
    t_indptr,
    t_indices,
    t_data,
    start,
    n,
    n_cols,
    k,
    mode,
    inv_norm,
    shrinkage,
    min_support,
    n_chunks,
    out_idx,
    out_sc,
    out_sup,
):
    """Rows start + c, start + c + n_chunks, ... against all columns (a shard)."""
    w = 2 if mode == MODE_DOT else (4 if mode == MODE_CORATED_COSINE else 6)
    cw = w - 1
    acc = np.zeros(n_cols * w, dtype=np.float64)
    touched = np.empty(n_cols, dtype=np.int64)
    lo_q = np.empty(n_cols if n_cols > 0 else 1, dtype=np.int64)
    hs = np.empty((1, k), dtype=np.float64)
    hj = np.empty((1, k), dtype=np.int64)
    hn = np.empty((1, k), dtype=np.int32)
    hsize = np.zeros(1, dtype=np.int64)
    thr_s = np.empty(1, dtype=np.float64)
    thr_j = np.empty(1, dtype=np.int64)
    for r in range(c, n, n_chunks):
        i = start + r
        if a_indptr[i + 1] - a_indptr[i] > lo_q.size:
            lo_q = np.empty(a_indptr[i + 1] - a_indptr[i], dtype=np.int64)
        dense, m = _row(
            i,
            False,
            a_indptr,
            a_indices,
            a_data,
            t_indptr,
            t_indices,
            t_data,
            n_cols,
            mode,
            w,
            acc,
            touched,
            lo_q,
        )
        inv_i = inv_norm[i] if mode == MODE_DOT else 0.0
        hsize[0] = 0
        thr_s[0] = -np.inf
        thr_j[0] = 0
        n_scan = n_cols if dense else m
        for t in range(n_scan):
            j = t if dense else touched[t]
            b = j * w
            cnt = acc[b + cw]
            if cnt == 0.0:
                continue
            nn = int(cnt)
            if nn >= min_support and j != i:
                inv_j = inv_norm[j] if mode == MODE_DOT else 0.0
                s = _score(mode, acc, b, nn, inv_i, inv_j, shrinkage)
                if np.isfinite(s) and _beats(thr_s, thr_j, 0, s, j):
                    _offer(hs, hj, hn, hsize, thr_s, thr_j, 0, k, s, j, nn)
            for tt in range(w):
                acc[b + tt] = 0.0
        _emit(hs[0], hj[0], hn[0], hsize[0], k, out_idx, out_sc, out_sup, r)


@njit(cache=True, parallel=True, nogil=True)
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
    n_chunks,
):
    """Top-k most similar rows of A for rows ``start..stop-1`` against all rows of A.

    A is given as CSR (a_*), rows x features; its transpose as CSR (t_*), features x rows,
    both with sorted indices. For row i every row j sharing a feature is visited once per
    shared feature, accumulating the needed sums in one interleaved record per column.
    Rows whose co-occurrence row is dense (popular rows, the bulk of the work) skip the
    touched-column bookkeeping and are finalised by one sequential scan. Memory per
    thread: one record per column plus a k-heap.

    Returns (indices int32 (n, k) padded -1, scores float64 (n, k) padded NaN,
    support int32 (n, k) padded 0).
    """
    n = stop - start
    out_idx = np.full((n, k), -1, dtype=np.int32)
    out_sc = np.full((n, k), np.nan, dtype=np.float64)
    out_sup = np.zeros((n, k), dtype=np.int32)
    # interleaved rows balance the load: row costs are very uneven (popular rows)
    for c in prange(n_chunks):
        _chunk(
            c,
            a_indptr,
            a_indices,
            a_data,
            t_indptr,
            t_indices,
            t_data,
            start,
            n,
            n_cols,
            k,
            mode,
            inv_norm,
            shrinkage,
            min_support,
            n_chunks,
            out_idx,
            out_sc,
            out_sup,
        )
    return out_idx, out_sc, out_sup


@njit(cache=True)
def _sym_part(
    part,
    n_parts,
    start,
    stop,
    a_indptr,
    a_indices,
    a_data,
    t_indptr,
    t_indices,
    t_data,
    n,
    k,
    mode,
    inv_norm,
    shrinkage,
    min_support,
    hs,
    hj,
    hn,
    hsize,
    ts,
    tj,
    bounds,
    block_cols,
    n_blocks,
    a_to_t,
):
    """Rows start + part, start + part + n_parts, ... below stop: each pair (i, j > i) is
    computed once and offered to both rows' heaps in this part's table
    (hs/hj/hn/hsize/ts/tj[part], whose row r holds row start + r)."""
    w = 2 if mode == MODE_DOT else (4 if mode == MODE_CORATED_COSINE else 6)
    cw = w - 1
    acc = np.zeros(n * w, dtype=np.float64)
    touched = np.empty(n, dtype=np.int64)
    lo_q = np.empty(n if n > 0 else 1, dtype=np.int64)
    ps, pj, pn, psz = hs[part], hj[part], hn[part], hsize[part]
    thr_s, thr_j = ts[part], tj[part]
    for i in range(start + part, stop, n_parts):
        hi_ = i - start  # heap rows: row r of the tables holds row start + r
        p0 = a_indptr[i]
        p1 = a_indptr[i + 1]
        if p1 - p0 > lo_q.size:
            lo_q = np.empty(p1 - p0, dtype=np.int64)
        work = 0
        for p in range(p0, p1):
            f = a_indices[p]
            # entry p (row i, feature f) sits at a_to_t[p] in f's column: the pairs j > i
            # start right after it (no search needed)
            lo = a_to_t[p] + 1
            lo_q[p - p0] = lo
            work += t_indptr[f + 1] - lo
        inv_i = inv_norm[i] if mode == MODE_DOT else 0.0
        if work * 4 < n:
            # sparse row: track the touched columns, accumulate, finalise those
            m = 0
            for p in range(p0, p1):
                for q in range(lo_q[p - p0], t_indptr[a_indices[p] + 1]):
                    j = t_indices[q]
                    if acc[j * w + cw] == 0.0:
                        acc[j * w + cw] = -1.0
                        touched[m] = j
                        m += 1
            for t in range(m):
                acc[touched[t] * w + cw] = 0.0
            for p in range(p0, p1):
                f = a_indices[p]
                _accumulate(
                    mode, acc, w, a_data[p], t_indices, t_data, lo_q[p - p0], t_indptr[f + 1]
                )
            # (pair finalisation is written out inline: a call per pair costs more
            # than the work, numba reference-counts every array argument)
            for t in range(m):
                j = touched[t]
                b = j * w
                cnt = acc[b + cw]
                if cnt == 0.0:
                    continue
                nn = int(cnt)
                if nn >= min_support:
                    inv_j = inv_norm[j] if mode == MODE_DOT else 0.0
                    s = _score(mode, acc, b, nn, inv_i, inv_j, shrinkage)
                    if np.isfinite(s):
                        if _beats(thr_s, thr_j, hi_, s, j):
                            _offer(ps, pj, pn, psz, thr_s, thr_j, hi_, k, s, j, nn)
                        hj_ = j - start
                        if _beats(thr_s, thr_j, hj_, s, i):
                            _offer(ps, pj, pn, psz, thr_s, thr_j, hj_, k, s, i, nn)
                for tt in range(w):
                    acc[b + tt] = 0.0
            continue
        # dense row: column blocks small enough to stay in cache, each accumulated from
        # every feature (positions from the precomputed block bounds) and then scanned
        b0 = (i + 1) // block_cols
        for blk in range(b0, n_blocks):
            c1 = min(n, (blk + 1) * block_cols)
            for p in range(p0, p1):
                f = a_indices[p]
                lo = max(lo_q[p - p0], bounds[f, blk])
                hi = bounds[f, blk + 1]
                if lo < hi:
                    _accumulate(mode, acc, w, a_data[p], t_indices, t_data, lo, hi)
            for jj in range(max(i + 1, blk * block_cols), c1):
                j = jj
                b = j * w
                cnt = acc[b + cw]
                if cnt == 0.0:
                    continue
                nn = int(cnt)
                if nn >= min_support:
                    inv_j = inv_norm[j] if mode == MODE_DOT else 0.0
                    s = _score(mode, acc, b, nn, inv_i, inv_j, shrinkage)
                    if np.isfinite(s):
                        if _beats(thr_s, thr_j, hi_, s, j):
                            _offer(ps, pj, pn, psz, thr_s, thr_j, hi_, k, s, j, nn)
                        hj_ = j - start
                        if _beats(thr_s, thr_j, hj_, s, i):
                            _offer(ps, pj, pn, psz, thr_s, thr_j, hj_, k, s, i, nn)
                for tt in range(w):
                    acc[b + tt] = 0.0


@njit(cache=True, parallel=True)
def _block_bounds(t_indptr, t_indices, block_cols, n_blocks):
    """bounds[f, b] = first position in feature f's column with index >= b * block_cols."""
    n_f = t_indptr.shape[0] - 1
    bounds = np.empty((n_f, n_blocks + 1), dtype=np.int64)
    for f in prange(n_f):
        lo = t_indptr[f]
        hi = t_indptr[f + 1]
        q = lo
        for b in range(n_blocks + 1):
            limit = b * block_cols
            while q < hi and t_indices[q] < limit:
                q += 1
            bounds[f, b] = q
        bounds[f, n_blocks] = hi
    return bounds


@njit(cache=True, parallel=True, nogil=True)
def topk_similar_all(
    a_indptr,
    a_indices,
    a_data,
    t_indptr,
    t_indices,
    t_data,
    n,
    k,
    mode,
    inv_norm,
    shrinkage,
    min_support,
    n_parts,
    block_cols,
    a_to_t,
    start,
    stop,
):
    """The pairs (i, j > i) with i in ``start..stop-1``, each computed once and offered to
    both rows: the top-k of rows ``start..n-1`` among those pairs (rows before ``start``
    meet none of them). With ``start=0, stop=n`` this is the same result as
    ``topk_similar_rows(0, n)`` with half the accumulation work; for other ranges it is a
    shard's partial lists, which ``topk_merge`` combines into the full ones.

    ``a_to_t[p]`` is the position in the transpose (t_*) of A's entry p.

    Each of the n_parts threads keeps its own (n - start, k) heaps, merged at the end; the
    heaps order candidates totally (score desc, index asc), so the result does not depend
    on which part (or shard) saw a pair first. Pair sums are accumulated over the shared
    features in ascending feature order either way, so scores are bit-identical to the
    row-by-row kernel.

    Returns (indices int32, scores float64, support int32), each (n - start, k), padded
    with -1 / NaN / 0.
    """
    n_out = n - start
    hs = np.empty((n_parts, n_out, k), dtype=np.float64)
    hj = np.empty((n_parts, n_out, k), dtype=np.int64)
    hn = np.empty((n_parts, n_out, k), dtype=np.int32)
    hsize = np.zeros((n_parts, n_out), dtype=np.int64)
    ts = np.full((n_parts, n_out), -np.inf, dtype=np.float64)
    tj = np.zeros((n_parts, n_out), dtype=np.int64)
    n_blocks = max(1, (n + block_cols - 1) // block_cols)
    bounds = _block_bounds(t_indptr, t_indices, block_cols, n_blocks)
    for part in prange(n_parts):
        _sym_part(
            part,
            n_parts,
            start,
            stop,
            a_indptr,
            a_indices,
            a_data,
            t_indptr,
            t_indices,
            t_data,
            n,
            k,
            mode,
            inv_norm,
            shrinkage,
            min_support,
            hs,
            hj,
            hn,
            hsize,
            ts,
            tj,
            bounds,
            block_cols,
            n_blocks,
            a_to_t,
        )
    out_idx = np.full((n_out, k), -1, dtype=np.int32)
    out_sc = np.full((n_out, k), np.nan, dtype=np.float64)
    out_sup = np.zeros((n_out, k), dtype=np.int32)
    for i in prange(n_out):
        m = 0
        for part in range(n_parts):
            m += hsize[part, i]
        ss = np.empty(m, dtype=np.float64)
        jj = np.empty(m, dtype=np.int64)
        nn = np.empty(m, dtype=np.int32)
        m = 0
        for part in range(n_parts):
            for t in range(hsize[part, i]):
                ss[m] = hs[part, i, t]
                jj[m] = hj[part, i, t]
                nn[m] = hn[part, i, t]
                m += 1
        _emit(ss, jj, nn, m, k, out_idx, out_sc, out_sup, i)
    return out_idx, out_sc, out_sup


@njit(cache=True, parallel=True, nogil=True)
def topk_merge(idx, sc, sup, k):
    """Each row's best k of its candidates: idx/sc/sup (n, m) hold m candidates a row (the
    shards' partial lists side by side), padded with index -1. Same order as the neighbour
    kernels (score desc, then index asc). Returns (int32, float64, int32) arrays (n, k)."""
    n = idx.shape[0]
    width = idx.shape[1]
    out_idx = np.full((n, k), -1, dtype=np.int32)
    out_sc = np.full((n, k), np.nan, dtype=np.float64)
    out_sup = np.zeros((n, k), dtype=np.int32)
    for r in prange(n):
        ss = np.empty(width, dtype=np.float64)
        jj = np.empty(width, dtype=np.int64)
        nn = np.empty(width, dtype=np.int32)
        m = 0
        for c in range(width):
            if idx[r, c] >= 0:
                ss[m] = sc[r, c]
                jj[m] = idx[r, c]
                nn[m] = sup[r, c]
                m += 1
        _emit(ss, jj, nn, m, k, out_idx, out_sc, out_sup, r)
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


@njit(cache=True, nogil=True)
def row_dots(t_indptr, t_indices, t_data, features, x, n):
    """One row's sums against every row, from the transpose (t_*: features x rows, CSR):
    for each feature f with value x, every row r in f's column. Returns (dot float64
    (n,), co-rated count float64 (n,)). Costs the total length of those columns."""
    dots = np.zeros(n)
    counts = np.zeros(n)
    for q in range(features.shape[0]):
        f = features[q]
        xf = x[q]
        for p in range(t_indptr[f], t_indptr[f + 1]):
            r = t_indices[p]
            dots[r] += xf * t_data[p]
            counts[r] += 1.0
    return dots, counts


@njit(cache=True, nogil=True)
def column_sums(indptr, indices, w, e, rows, i, n):
    """Item ``i``'s sums against every item over the given ``rows`` (users who rated it;
    A as CSR users x items with two value arrays ``w`` and ``e``): out[j] = (sum x_w w_j,
    sum x_e e_j, sum x_e^2, sum e_j^2, count), x being each row's own value at ``i``.
    Costs the total length of those rows."""
    out = np.zeros((n, 5))
    for t in range(rows.shape[0]):
        u = rows[t]
        lo = indptr[u]
        hi = indptr[u + 1]
        a, b = lo, hi
        while a < b:  # the row's entry for item i
            mid = (a + b) >> 1
            if indices[mid] < i:
                a = mid + 1
            else:
                b = mid
        if a == hi or indices[a] != i:
            continue
        xw = w[a]
        xe = e[a]
        for p in range(lo, hi):
            j = indices[p]
            out[j, 0] += xw * w[p]
            out[j, 1] += xe * e[p]
            out[j, 2] += xe * xe
            out[j, 3] += e[p] * e[p]
            out[j, 4] += 1.0
    return out


@njit(cache=True, nogil=True)
def evidence_sums(table, items, ratings, n):
    """(count, sum) float64 (n,) each of ``ratings`` by column ``table[items]`` (-1 or an
    id past the table: no column), added in input order, as ``np.bincount`` adds them:
    a first read's neighbour evidence in one pass, without the column and mask arrays."""
    counts = np.zeros(n)
    sums = np.zeros(n)
    size = table.shape[0]
    for t in range(items.shape[0]):
        i = items[t]
        if i < 0 or i >= size:
            continue
        c = table[i]
        if c >= 0:
            counts[c] += 1.0
            sums[c] += np.float64(ratings[t])
    return counts, sums
