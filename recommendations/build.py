"""Building a model version: the ratings snapshot, the shard plan, each shard's rows.

The numeric work is the engine's (``recommendations.engine``); this module only turns
database rows into arrays and engine output into the store's encoded rows, keyed by
database ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import scipy.sparse as sp
from django.db.models import BigIntegerField, Func

from recommendations import model_scoring, ranking, store
from recommendations.conf import get as option
from recommendations.engine import (
    Baselines,
    Neighbours,
    RatingMatrix,
    bm25_weight,
    compute_neighbours,
)
from recommendations.engine.similarity import _csc_permutation as similarity_csc_permutation
from recommendations.engine.similarity import (
    compute_neighbour_pairs,
    merge_neighbours,
    pair_ranges,
    pair_work,
)

# Kinds of rows a version holds, and whether they are indexed by item or by user.
ROW_KINDS = {"ii": "item", "ip": "item", "uu": "user", "ur": "user"}
# How each kind of neighbour list is computed: for ranking, cosine on BM25 weights (the
# engine's best top-N configuration on MovieLens 100k); for predicting a rating, shrunk
# pearson_baseline (its best RMSE). "k" and "shrinkage" name settings in conf.py.
_LISTS = {
    "ii": {"bm25": True, "measure": "cosine", "k": "ITEM_K", "shrinkage": None},
    "uu": {"bm25": True, "measure": "cosine", "k": "USER_K", "shrinkage": None},
    "ip": {
        "bm25": False,
        "measure": "pearson_baseline",
        "k": "PREDICT_K",
        "shrinkage": "PREDICT_SHRINKAGE",
    },
}


def snapshot_ratings(*, progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """All ratings as arrays ``user`` (int64), ``item`` (int64), ``score`` (float32), and
    ``time`` (uint32 whole seconds since 1970 of ``updated``: 4 bytes a rating, and
    rating times are compared by the second, as MovieLens's are) when the ranking model
    needs rating times (``model_scoring.wants_times``).

    Streamed from the database in chunks as plain tuples, never as model objects.
    """
    from catalog.models import Rating

    timed = model_scoring.wants_times()
    chunks_u, chunks_i, chunks_s, chunks_t = [], [], [], []
    rows = Rating.objects.order_by()
    if timed:
        rows = rows.annotate(second=_EpochSeconds("updated"))
    fields = ("user_id", "item_id", "score", "second") if timed else ("user_id", "item_id", "score")
    rows = rows.values_list(*fields)
    batch: list[tuple] = []
    times: list[int] = []
    for row in rows.iterator(chunk_size=20_000):
        if timed:
            times.append(row[3])
            row = row[:3]
        batch.append(row)
        if len(batch) == 100_000:
            _flush(batch, chunks_u, chunks_i, chunks_s, progress)
            chunks_t.append(np.array(times, dtype=np.uint32))
            batch, times = [], []
    _flush(batch, chunks_u, chunks_i, chunks_s, progress)
    out = {
        "user": np.concatenate(chunks_u) if chunks_u else np.empty(0, np.int64),
        "item": np.concatenate(chunks_i) if chunks_i else np.empty(0, np.int64),
        "score": np.concatenate(chunks_s) if chunks_s else np.empty(0, np.float32),
    }
    if timed:
        out["time"] = np.concatenate([*chunks_t, np.array(times, dtype=np.uint32)])
    return out


class _EpochSeconds(Func):
    """Whole seconds since 1970 (UTC) of a datetime column, computed by the database:
    a Python datetime a rating, and its ``timestamp()``, cost 2 CPU us a rating (10M on
    SQLite: snapshot read 7.3 -> 26.8 CPU s; bench/README, eighth round)."""

    output_field = BigIntegerField()

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="CAST(strftime('%%%%s', %(expressions)s) AS INTEGER)"
        )

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="FLOOR(EXTRACT(EPOCH FROM %(expressions)s))::bigint"
        )


def snapshot_list_context() -> dict[str, np.ndarray]:
    """What stored recommendation lists depend on besides ratings, as snapshot arrays.

    Every user's taste stamp, hidden items and the inactive items, and which users get a
    stored list (``ready_users``). Read *before* the ratings: a rating that lands in
    between is then in the ratings but not in the stamp, so its list is stale on arrival
    and the site computes that user's list live.
    """
    from catalog.models import HiddenItem, Item
    from catalog.selectors import user_taste_stamps

    stamps = user_taste_stamps()
    hidden = np.array(
        list(HiddenItem.objects.order_by().values_list("user_id", "item_id")), dtype=np.int64
    ).reshape(-1, 2)
    inactive = Item.objects.filter(is_active=False).values_list("pk", flat=True)
    return {
        "stamp_user": np.fromiter(stamps.keys(), dtype=np.int64, count=len(stamps)),
        "stamp": np.array(list(stamps.values()), dtype="S"),
        "hidden_user": hidden[:, 0].copy(),
        "hidden_item": hidden[:, 1].copy(),
        "inactive": np.fromiter(inactive, dtype=np.int64),
        "ready_user": ready_users(all_users=stamps.keys()),
    }


def ready_users(*, all_users: Iterable[int], now: datetime | None = None) -> np.ndarray:
    """Ids (int64) of the users whose lists the recompute stores, most recently active
    first: those who rated, logged in or had their list computed on read
    (``store.readers_since``) within READY_ACTIVE_DAYS, at most READY_MAX_USERS of them
    (0: no cap). READY_ACTIVE_DAYS None: every user in ``all_users``.

    The rest have their list computed on their first read and kept for the version
    (``reads.recommendations_for_user``), so the stage costs what activity needs, not
    what the number of users does.
    """
    from django.contrib.auth import get_user_model
    from django.db.models import Max
    from django.utils import timezone

    from catalog.models import Rating

    days = option("READY_ACTIVE_DAYS")
    if days is None:
        return np.fromiter(all_users, dtype=np.int64)
    cutoff = (now or timezone.now()) - timedelta(days=days)
    rated = (
        Rating.objects.filter(updated__gte=cutoff)
        .order_by()
        .values("user_id")
        .annotate(last=Max("updated"))
        .values_list("user_id", "last")
    )
    logins = get_user_model().objects.filter(last_login__gte=cutoff)
    last: dict[int, float] = store.readers_since(cutoff.timestamp())
    for user_id, when in [*rated, *logins.values_list("pk", "last_login")]:
        last[user_id] = max(last.get(user_id, 0.0), when.timestamp())
    ids = np.fromiter(last.keys(), dtype=np.int64, count=len(last))
    times = np.fromiter(last.values(), dtype=np.float64, count=len(last))
    order = np.lexsort((ids, -times))  # newest first, ties by id
    cap = option("READY_MAX_USERS")
    return ids[order[:cap] if cap else order]


def _wrap(data, indices, indptr, shape, arrays) -> RatingMatrix:
    """A RatingMatrix over existing CSR arrays, without copying them."""
    csr = sp.csr_matrix(shape, dtype=np.float64)
    csr.data, csr.indices, csr.indptr = data, indices, indptr
    csr.has_sorted_indices = True
    return RatingMatrix(csr=csr, user_ids=arrays["user_ids"], item_ids=arrays["item_ids"])


def _csc(data, indptr, indices, shape) -> sp.csc_matrix:
    csc = sp.csc_matrix(shape, dtype=np.float64)
    csc.data, csc.indices, csc.indptr = data, indices, indptr
    csc.has_sorted_indices = True
    return csc


def _baseline_array(b: Baselines) -> np.ndarray:
    """[global mean, user biases..., item biases...] as one float64 array."""
    return np.concatenate([[b.global_mean_], b.user_bias_, b.item_bias_])


def _flush(batch, chunks_u, chunks_i, chunks_s, progress):
    if not batch:
        return
    array = np.array(batch, dtype=np.float64)
    chunks_u.append(array[:, 0].astype(np.int64))
    chunks_i.append(array[:, 1].astype(np.int64))
    chunks_s.append(array[:, 2].astype(np.float32))
    if progress is not None:
        progress(len(batch))


def snapshot_arrays(ratings: dict[str, np.ndarray], context: dict[str, np.ndarray]) -> dict:
    """A version's snapshot: the ratings matrix as CSR arrays (what every process maps
    read-only, used as they are) and the list context."""
    matrix = RatingMatrix.from_arrays(ratings["user"], ratings["item"], ratings["score"])
    out = {**matrix_arrays(matrix), **context}
    if "time" in ratings:
        # aligned with the CSR data: from_arrays' (user, item) order, one rating a pair
        order = np.lexsort((ratings["item"], ratings["user"]))
        if order.size != matrix.nnz:
            raise ValueError("a (user, item) pair rated twice in the snapshot")
        out["times"] = np.asarray(ratings["time"])[order]  # (its dtype: uint32 seconds)
    return out


def matrix_arrays(matrix: RatingMatrix) -> dict[str, np.ndarray]:
    """The snapshot's ratings part: ``matrix`` as CSR arrays and its ids."""
    csr = matrix.csr
    return {
        "indptr": csr.indptr,
        "indices": csr.indices,
        "data": csr.data,
        "user_ids": matrix.user_ids,
        "item_ids": matrix.item_ids,
    }


def _in_memory(name: str, make):
    return make()


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """What every shard derives, identically, from one snapshot."""

    matrix: RatingMatrix  # raw scores
    ranking: RatingMatrix  # BM25-weighted, for the ranking similarities
    baselines: Baselines
    derived: Callable = _in_memory  # (name, make) -> array: see from_snapshot

    @classmethod
    def from_snapshot(cls, arrays: dict[str, np.ndarray], derived=_in_memory) -> ModelInputs:
        """From ``snapshot_arrays``' arrays (mapped files are used as they are).

        ``derived(name, make)`` keeps the arrays every process derives alike (BM25 weights,
        baselines, the item-major index): by default each is made here, in memory;
        ``store.snapshot_derived`` makes it once per machine and maps it.
        """
        shape = (arrays["user_ids"].size, arrays["item_ids"].size)
        matrix = _wrap(arrays["data"], arrays["indices"], arrays["indptr"], shape, arrays)
        perm = derived("csc_perm", lambda: similarity_csc_permutation(matrix))
        csc = (
            derived("csc_indptr", lambda: matrix.csc.indptr),
            derived("csc_indices", lambda: matrix.csc.indices),
        )
        cache = matrix.__dict__.setdefault("_cache", {})
        cache["csc_perm"] = perm
        cache["csc"] = _csc(derived("csc_data", lambda: matrix.csr.data[perm]), *csc, shape)
        ranking = _wrap(
            derived("bm25", lambda: bm25_weight(matrix).csr.data),
            matrix.csr.indices,
            matrix.csr.indptr,
            shape,
            arrays,
        )
        bias = derived("baselines", lambda: _baseline_array(Baselines().fit(matrix)))
        baselines = Baselines()
        baselines.global_mean_ = float(bias[0])
        baselines.user_bias_ = bias[1 : 1 + shape[0]]
        baselines.item_bias_ = bias[1 + shape[0] :]
        return cls(matrix=matrix, ranking=ranking, baselines=baselines, derived=derived)

    def n_rows(self, kind: str) -> int:
        return self.matrix.n_items if ROW_KINDS[kind] == "item" else self.matrix.n_users


@dataclass(frozen=True, eq=False)
class ListInputs:
    """What the stored lists of one version are computed from, besides ``ModelInputs``."""

    item_lists: Neighbours  # "ii", dense, in the matrix's item index space
    user_lists: Neighbours  # "uu", dense, in its user index space
    stamps: dict[int, str]  # user id -> taste stamp when the snapshot was taken
    hidden: dict[int, np.ndarray]  # user id -> item indices they hid
    inactive: np.ndarray  # item indices hidden from the catalogue
    # The same by database id, for the ranking model (whose columns include unrated items)
    hidden_ids: dict[int, np.ndarray]
    inactive_ids: np.ndarray
    # ids of the users whose lists the stage stores (``ready_users``); None: every user
    ready: frozenset[int] | None = None

    @classmethod
    def load(cls, version: str, inputs: ModelInputs, arrays: dict[str, np.ndarray]) -> ListInputs:
        m = inputs.matrix
        hidden_index = m.item_indices(arrays["hidden_item"])
        known = hidden_index >= 0
        hidden: dict[int, list[int]] = {}
        for user_id, j in zip(
            arrays["hidden_user"][known].tolist(), hidden_index[known].tolist(), strict=True
        ):
            hidden.setdefault(user_id, []).append(j)
        hidden_ids: dict[int, list[int]] = {}
        for user_id, item_id in zip(
            arrays["hidden_user"].tolist(), arrays["hidden_item"].tolist(), strict=True
        ):
            hidden_ids.setdefault(user_id, []).append(item_id)
        inactive = m.item_indices(arrays["inactive"])
        return cls(
            item_lists=_stored_neighbours(version, "ii", m.n_items, m.item_indices),
            user_lists=_stored_neighbours(version, "uu", m.n_users, m.user_indices),
            stamps=dict(
                zip(
                    arrays["stamp_user"].tolist(),
                    np.char.decode(arrays["stamp"], "ascii").tolist(),
                    strict=True,
                )
            ),
            hidden={u: np.array(js, dtype=np.int64) for u, js in hidden.items()},
            inactive=inactive[inactive >= 0],
            hidden_ids={u: np.array(js, dtype=np.int64) for u, js in hidden_ids.items()},
            inactive_ids=np.asarray(arrays["inactive"], dtype=np.int64),
            ready=frozenset(arrays["ready_user"].tolist()) if "ready_user" in arrays else None,
        )


def _stored_neighbours(version: str, kind: str, n_rows: int, to_index) -> Neighbours:
    """A kind of neighbour rows read back from the store into the engine's dense form."""
    rows = {row_id: store.decode_neighbours(raw) for row_id, raw in store.read_rows(version, kind)}
    return ranking.dense_neighbours(rows, n_rows, to_index, ROW_KINDS[kind])


# Neighbour kinds computed by the symmetric pass in shards: each pair once, by the shard
# of its lower row, which keeps partial lists of every row it touches; a merge stage then
# makes each row's list from the shards' partial lists. Sharding by rows instead computes
# every pair from both sides, twice the work. User-user is where the recompute's time goes
# (README, "Full recompute"); the item kinds stay row shards: their partial lists would be
# as big as the lists once a shard (16 bytes a neighbour: 200 for "ip", ~190 MB a shard at
# 25M ratings), and the engine supports them here unchanged should they ever dominate.
SYMMETRIC_KINDS = ("uu",)
PAIRS, MERGE = ":pairs", ":merge"  # plan kinds: "uu:pairs" then "uu:merge"
# A shard's partial lists are stored in groups of whole rows, about this big each.
PARTIAL_GROUP_BYTES = 16 * 1024 * 1024


def shard_plan(inputs: ModelInputs, shards: int) -> list[tuple[str, int, int]]:
    """(kind, start, stop) row ranges covering every kind in about ``shards`` parts each;
    for a symmetric kind, ("uu:pairs", start, stop) ranges of about equal pair work."""
    plan = []
    for kind in ROW_KINDS:
        if kind in SYMMETRIC_KINDS:
            work = pair_work(_list_matrix(inputs, kind), kind=ROW_KINDS[kind])
            plan += [(kind + PAIRS, start, stop) for start, stop in pair_ranges(work, shards)]
        else:
            plan += [(kind, start, stop) for start, stop in _ranges(inputs.n_rows(kind), shards)]
    return plan


def merge_plan(inputs: ModelInputs, shards: int) -> list[tuple[str, int, int]]:
    """("uu:merge", start, stop) row ranges that merge the symmetric kinds' partial lists."""
    return [
        (kind + MERGE, start, stop)
        for kind in SYMMETRIC_KINDS
        for start, stop in _ranges(inputs.n_rows(kind), shards)
    ]


def ready_plan(
    inputs: ModelInputs, shards: int, users: np.ndarray | None = None
) -> list[tuple[str, int, int]]:
    """("ready", start, stop) user ranges for the stored lists, in about ``shards`` parts,
    each holding about as many of ``users`` (ids: ``ready_users``; None: every user)."""
    n = inputs.matrix.n_users
    if users is None:
        return [("ready", start, stop) for start, stop in _ranges(n, shards)]
    rows = np.sort(inputs.matrix.user_indices(users))
    rows = rows[rows >= 0]
    cuts = [int(rows[a]) for a, _ in _ranges(rows.size, shards)[1:]]
    bounds = sorted({0, *cuts, n})
    return [("ready", a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)] or [
        ("ready", 0, n)
    ]


def _ranges(n: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` (fewer for tiny ``n``) consecutive ranges of about equal size covering 0..n."""
    bounds = np.linspace(0, n, min(shards, max(n, 1)) + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


# The stored-lists stage scores users with the ranking model a block at a time
# (``model_scoring.score_block``): at most this many users x model columns a block, so its
# few dense (users, columns) float64 arrays stay near 32 MB each (64 users at 62k items).
READY_BLOCK_CELLS = 4_000_000
READY_BLOCK_USERS = 512


def compute_ready(
    inputs: ModelInputs,
    lists: ListInputs,
    start: int,
    stop: int,
    *,
    model: model_scoring.ModelParts | None = None,
    batch: int | None = None,
) -> dict[int, bytes]:
    """Stored top-N lists of users ``start..stop-1`` who have enough ratings and are in
    ``lists.ready`` (``ready_users``), by user id.

    Each is exactly what ``reads.recommendations_for_user`` computes live for that user
    from this version (the same ``ranking.rank`` on the same numbers; with ``model``, the
    version's ranking model scoring the user's ratings, ``batch`` users at a time, by
    default as many as ``READY_BLOCK_CELLS`` allows), kept with the user's taste stamp.
    """
    m = inputs.matrix
    csr = m.csr
    needed = model_scoring.min_ratings(model is not None)
    counts = np.diff(csr.indptr[start : stop + 1])
    users = [
        u
        for u, count in zip(range(start, stop), counts.tolist(), strict=True)
        if count >= needed
        and int(m.user_ids[u]) in lists.stamps
        and (lists.ready is None or int(m.user_ids[u]) in lists.ready)
    ]
    if model is None:
        return {int(m.user_ids[u]): _ready_list(inputs, lists, u) for u in users}
    if batch is None:
        batch = max(1, min(READY_BLOCK_USERS, READY_BLOCK_CELLS // max(model.n_items, 1)))
    out = {}
    for at in range(0, len(users), batch):
        block = np.array(users[at : at + batch], dtype=np.int64)
        rows = model_scoring.block_rows(model, csr[block], m.item_ids)
        for u, scored in zip(block.tolist(), model_scoring.score_block(model, rows), strict=True):
            out[int(m.user_ids[u])] = _ready_list(inputs, lists, u, scored)
    return out


def _ready_list(
    inputs: ModelInputs, lists: ListInputs, u: int, scored: model_scoring.UserScores | None = None
) -> bytes:
    """User ``u``'s stored list: ``ranking.rank`` on their slice of the version (with
    ``scored``, their scores from the ranking model)."""
    m = inputs.matrix
    csr = m.csr
    user_id = int(m.user_ids[u])
    lo, hi = csr.indptr[u], csr.indptr[u + 1]
    neighbours, _ = lists.user_lists.row(u)
    sl = ranking.UserSlice(
        matrix=m,
        user=u,
        rated=csr.indices[lo:hi],
        scores=csr.data[lo:hi],
        item_neighbours=lists.item_lists if scored is None else None,
        user_neighbours=lists.user_lists if neighbours.size else None,
        model=scored,
    )
    if scored is None:
        hidden = lists.hidden.get(user_id)
        unshown = lists.inactive if hidden is None else np.r_[hidden, lists.inactive]
    else:
        hidden = lists.hidden_ids.get(user_id, np.empty(0, np.int64))
        unshown = sl.item_indices(np.r_[hidden, lists.inactive_ids])
    rows = ranking.rank(
        sl, hidden=unshown, n=option("READY_LIST_LENGTH"), user_weight=option("USER_WEIGHT")
    )
    return store.encode_ready(lists.stamps[user_id], rows)


def compute_rows(inputs: ModelInputs, kind: str, start: int, stop: int) -> dict[int, bytes]:
    """Encoded rows ``start..stop-1`` of ``kind``, keyed by database id."""
    m = inputs.matrix
    if kind == "ur":
        indptr = m.csr.indptr
        return {
            int(m.user_ids[u]): store.encode_ratings(
                m.item_ids[m.csr.indices[indptr[u] : indptr[u + 1]]],
                m.csr.data[indptr[u] : indptr[u + 1]],
            )
            for u in range(start, stop)
        }
    nb = compute_neighbours(
        _list_matrix(inputs, kind),
        rows=(start, stop),
        baselines=inputs.baselines,
        **_list_options(kind),
    )
    return _encode_rows(inputs, kind, nb)


def _list_matrix(inputs: ModelInputs, kind: str) -> RatingMatrix:
    if kind not in _LISTS:
        raise ValueError(f"unknown row kind {kind!r}")
    return inputs.ranking if _LISTS[kind]["bm25"] else inputs.matrix


def _list_options(kind: str) -> dict:
    spec = _LISTS[kind]
    return {
        "kind": ROW_KINDS[kind],
        "measure": spec["measure"],
        "k": option(spec["k"]),
        "shrinkage": option(spec["shrinkage"]) if spec["shrinkage"] else 0.0,
    }


def _encode_rows(inputs: ModelInputs, kind: str, nb: Neighbours) -> dict[int, bytes]:
    m = inputs.matrix
    ids = m.item_ids if ROW_KINDS[kind] == "item" else m.user_ids
    out = {}
    for r in range(nb.n_rows):
        idx = nb.indices[r]
        n = int(np.count_nonzero(idx >= 0))
        out[int(ids[nb.offset + r])] = encode_list(
            ids[idx[:n]], nb.scores[r, :n], nb.support[r, :n]
        )
    return out


def compute_pairs(
    inputs: ModelInputs, kind: str, start: int, stop: int
) -> dict[str, dict[str, np.ndarray]]:
    """One shard of a symmetric kind ("uu:pairs"): the pairs whose lower row is in
    ``start..stop-1``, as partial lists of rows ``start..n-1`` (float64 scores, so the
    merge orders them as one run would), in named groups of whole rows for the store."""
    base = kind.removesuffix(PAIRS)
    if base not in SYMMETRIC_KINDS:
        raise ValueError(f"unknown row kind {kind!r}")
    options = _list_options(base)
    nb = compute_neighbour_pairs(
        _list_matrix(inputs, base),
        rows=(start, stop),
        baselines=inputs.baselines,
        **options,
    )
    n = inputs.n_rows(base)
    step = max(1, PARTIAL_GROUP_BYTES // (16 * options["k"]))
    groups = {}  # (a shard past the last row, as with no rows at all, stores one empty group)
    for lo in range(start - start % step, max(n, start + 1), step):
        lo, hi = max(lo, start), min(lo + step, n)
        rows = slice(lo - nb.offset, hi - nb.offset)
        groups[f"{base}.{start}-{stop}.{lo}-{hi}"] = {
            "indices": nb.indices[rows],
            "scores": nb.scores[rows],
            "support": nb.support[rows],
        }
    return groups


def compute_merged(
    inputs: ModelInputs, version: str, kind: str, start: int, stop: int
) -> dict[int, bytes]:
    """Encoded rows ``start..stop-1`` of a symmetric kind ("uu:merge"), merged from every
    shard's partial lists in the store: exactly what ``compute_rows`` computes for them.

    Raises ``LookupError`` when the stored partial lists do not cover every shard's rows.
    """
    base = kind.removesuffix(MERGE)
    if base not in SYMMETRIC_KINDS:
        raise ValueError(f"unknown row kind {kind!r}")
    n = inputs.n_rows(base)
    if start >= stop:
        return {}
    blocks: dict[tuple[int, int], list[tuple[int, int, str]]] = {}
    for group in store.partial_groups(version):
        name, shard, rows = group.split(".")
        if name == base:
            a, b = map(int, shard.split("-"))
            lo, hi = map(int, rows.split("-"))
            blocks.setdefault((a, b), []).append((lo, hi, group))
    shards = sorted(blocks)
    if (
        not shards
        or shards[0][0] != 0
        or shards[-1][1] != n
        or any(x[1] != y[0] for x, y in zip(shards, shards[1:], strict=False))
    ):
        raise LookupError(f"the partial {base} lists of {version} miss shards: have {shards}")
    parts = []
    for a, b in shards:
        first = max(a, start)
        if first >= stop:
            continue
        pieces, at = [], first
        for lo, hi, group in sorted(blocks[(a, b)]):
            if hi <= at or lo >= stop:
                continue
            if lo > at:
                break
            arrays = store.partial_get(version, group)
            rows = slice(at - lo, min(hi, stop) - lo)
            pieces.append({name: arrays[name][rows] for name in arrays})
            at = min(hi, stop)
        if at < stop:
            raise LookupError(f"the partial {base} lists of {version} miss rows {at}-{stop}")
        parts.append(
            Neighbours(
                indices=np.concatenate([p["indices"] for p in pieces]),
                scores=np.concatenate([p["scores"] for p in pieces]),
                support=np.concatenate([p["support"] for p in pieces]),
                offset=first,
            )
        )
    nb = merge_neighbours(parts, rows=(start, stop), k=option(_LISTS[base]["k"]))
    return _encode_rows(inputs, base, nb)


def encode_list(ids: np.ndarray, scores: np.ndarray, support: np.ndarray) -> bytes:
    """One neighbour list (database ids, best first) as stored: float32 scores, and only
    the positive ones (readers take a list as evidence for, never against)."""
    scores = np.asarray(scores, dtype=np.float32)
    keep = np.nan_to_num(scores, nan=0.0) > 0
    return store.encode_neighbours(ids[keep], scores[keep], np.asarray(support)[keep])


def bias_fields(inputs: ModelInputs) -> dict[str, float]:
    b = inputs.baselines
    fields = {"mu": float(b.global_mean_)}
    fields.update(
        {f"u:{uid}": float(v) for uid, v in zip(inputs.matrix.user_ids, b.user_bias_, strict=True)}
    )
    fields.update(
        {f"i:{iid}": float(v) for iid, v in zip(inputs.matrix.item_ids, b.item_bias_, strict=True)}
    )
    return fields
