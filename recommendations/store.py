"""Redis layout of published recommendation models: versioned keys, one live pointer.

Every key starts with the prefix (``RECOMMENDATIONS["KEY_PREFIX"]``, default ``rec``)::

    rec:live                    the live version id (one string: flipping it publishes)
    rec:lock                    the recompute lock (value: the run holding it)
    rec:readers                 sorted set user id -> when their list was last computed on
                                read (an activity signal for the stored lists' stage)
    rec:model-tuning            JSON: the ranking model's last tuned blend weights and when
    rec:v:<version>:meta        JSON: when, from how many ratings/users/items, settings
    rec:v:<version>:ii          hash item id -> item-item neighbours (ranking, "also liked")
    rec:v:<version>:ip          hash item id -> item-item neighbours for rating prediction
    rec:v:<version>:uu          hash user id -> user-user neighbours ("people like you")
    rec:v:<version>:ur          hash user id -> that user's ratings (for the user part)
    rec:v:<version>:ready       hash user id -> the user's top-N list, ready to serve, with
                                the taste stamp it was computed at (see ``encode_ready``)
    rec:v:<version>:bias        hash "mu" | "u:<id>" | "i:<id>" -> baseline bias (float64 bytes)
    rec:v:<version>:rows        hash kind -> rows written so far (completeness check)
    rec:v:<version>:snapshot    hash: the ratings the version was computed from, as
                                array chunks of at most SNAPSHOT_CHUNK_BYTES and their
                                "layout" (a folder in SNAPSHOT_DIR instead when that is set)
    rec:v:<version>:partial     hash: while a version is built, the symmetric pass's
                                partial neighbour lists, named arrays chunked like the
                                snapshot (a folder in SNAPSHOT_DIR instead when that is set);
                                dropped once merged
    rec:v:<version>:model       hash: the fitted ranking model's parts (``model_scoring``),
                                chunked and cached per machine like the snapshot
    rec:v:<version>:content     hash: the catalogue's fitted TF-IDF model (``cold_start``),
                                chunked and cached per machine like the snapshot
    rec:v:<version>:ic          hash item id -> its content neighbours (``content_rows``:
                                the most similar items by genre, year, title; support =
                                their rating counts then), for "also liked" and starter lists
    rec:v:<version>:icf         hash first row of a shard -> float32 (rows, 2) floors of
                                its content rows (what an item needs to enter one)
    rec:v:<version>:icx         hash item id -> the content vector of an item added or
                                changed since the recompute (int32 column, float32 weight)

Values are numpy buffers with explicit little-endian dtypes (never pickle). A stored
empty list is ``b""``; a missing field is ``None``: the two mean different things (no
neighbours versus not in this model). A version being built carries a TTL, so the pieces
of a crashed build expire by themselves; publishing removes it, and gives the previous
version a short TTL so readers that resolved it a moment ago can finish.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import redis
from django.conf import settings

from recommendations.conf import get as option

# Compact rows: database ids as int32 (checked when encoding), scores as float32.
NEIGHBOUR_DTYPE = np.dtype([("id", "<i4"), ("score", "<f4"), ("support", "<i4")])
RATING_DTYPE = np.dtype([("item", "<i4"), ("score", "<f4")])
# One stored suggestion: the item, its blended score, how many of the user's neighbours
# rated it and the sum of their scores (the "N people rated it X" line), up to REASONS
# of the user's own items and neighbours behind it (-1 pads), and which sentence its
# reason is (REASON_EVIDENCE: from the counts and items; REASON_NEW: "New, similar to X",
# an item without ratings that the content model matched to because_items[0];
# REASON_LOVED: "Loved by people who rated X", the loved co-occurrence from
# because_items[0], a new user's main part).
REASONS = 3
REASON_EVIDENCE, REASON_NEW, REASON_LOVED = 0, 1, 2
# Bumped when READY_DTYPE changes: a version published with another layout has its
# stored lists ignored (served live) instead of misread.
READY_FORMAT = 2
READY_DTYPE = np.dtype(
    [
        ("item", "<i4"),
        ("score", "<f4"),
        ("people", "<i4"),
        ("people_sum", "<f4"),
        ("because_items", "<i4", (REASONS,)),
        ("because_users", "<i4", (REASONS,)),
        ("reason", "<i1"),
    ]
)
KINDS = ("ii", "ip", "uu", "ur", "ready", "ic", "icf", "icx")
# Named array sets of a version (chunks in Redis or a folder), and their folder prefix.
ARRAY_SETS = {"snapshot": "ratings", "model": "model", "content": "content", "fm": "fm"}
VERSION_KEYS = ("meta", "bias", "rows", *ARRAY_SETS, "partial", *KINDS)

# What readers treat as "Redis is not there": they fall back instead of failing.
RedisUnavailable = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)


@cache
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=option("REDIS_CONNECT_TIMEOUT"),
        socket_timeout=option("REDIS_TIMEOUT"),
        health_check_interval=30,
    )


def client() -> redis.Redis:
    """A pooled client for ``settings.REDIS_URL`` (read when called, never at import)."""
    return _client_for(settings.REDIS_URL)


def key(*parts) -> str:
    return ":".join([option("KEY_PREFIX"), *map(str, parts)])


def version_key(version: str, name: str) -> str:
    return key("v", version, name)


# -- encoding ---------------------------------------------------------------------------
_INT32 = np.iinfo(np.int32)


def ids32(ids) -> np.ndarray:
    """Database ids as the rows' int32; raises ``OverflowError`` rather than wrap."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < _INT32.min or ids.max() > _INT32.max):
        raise OverflowError("a database id does not fit the stored rows' int32")
    return ids.astype(np.int32)


def encode_neighbours(ids: np.ndarray, scores: np.ndarray, support: np.ndarray) -> bytes:
    out = np.empty(len(ids), dtype=NEIGHBOUR_DTYPE)
    out["id"], out["score"], out["support"] = ids32(ids), scores, support
    return out.tobytes()


def decode_neighbours(raw: bytes | None) -> np.ndarray | None:
    """Structured array (id, score, support), best first; None when the field was missing."""
    if raw is None:
        return None
    return np.frombuffer(raw, dtype=NEIGHBOUR_DTYPE)


def encode_ratings(items: np.ndarray, scores: np.ndarray) -> bytes:
    out = np.empty(len(items), dtype=RATING_DTYPE)
    out["item"], out["score"] = ids32(items), scores
    return out.tobytes()


def decode_ratings(raw: bytes | None) -> np.ndarray | None:
    if raw is None:
        return None
    return np.frombuffer(raw, dtype=RATING_DTYPE)


def encode_ready(stamp: str, rows: np.ndarray) -> bytes:
    """A stored list: the user's taste stamp (ASCII), "|", then READY_DTYPE rows."""
    return stamp.encode("ascii") + b"|" + np.asarray(rows, dtype=READY_DTYPE).tobytes()


def decode_ready(raw: bytes | None) -> tuple[str, np.ndarray] | None:
    if raw is None:
        return None
    stamp, _, rows = raw.partition(b"|")
    return stamp.decode("ascii"), np.frombuffer(rows, dtype=READY_DTYPE)


# -- reading ----------------------------------------------------------------------------
# The most bytes of neighbours' ratings a first read's script returns itself (past that,
# the caller reads them: see ``_LIST_AND_RATINGS``).
INLINE_RATINGS_BYTES = 128 * 1024


@dataclass(frozen=True)
class LiveModel:
    """A handle on one published version; every read goes to that version's keys."""

    version: str
    meta: dict

    def _many(self, kind: str, ids: Iterable[int], decode) -> dict[int, np.ndarray | None]:
        ids = list(dict.fromkeys(int(i) for i in ids))
        if not ids:
            return {}
        raw = client().hmget(version_key(self.version, kind), ids)
        return {i: decode(value) for i, value in zip(ids, raw, strict=True)}

    def lists_for_user(self, user_id: int, item_ids: Iterable[int]):
        """({item id: item-item list}, the user's user-user list) in one round trip."""
        item_ids = list(dict.fromkeys(int(i) for i in item_ids))
        pipe = client().pipeline(transaction=False)
        if item_ids:
            pipe.hmget(version_key(self.version, "ii"), item_ids)
        pipe.hget(version_key(self.version, "uu"), user_id)
        replies = pipe.execute()
        items = replies[0] if item_ids else []
        lists = {i: decode_neighbours(raw) for i, raw in zip(item_ids, items, strict=True)}
        return lists, decode_neighbours(replies[-1])

    def user_list_and_ratings(
        self, user_id: int, *, inline_bytes: int = INLINE_RATINGS_BYTES
    ) -> tuple[np.ndarray | None, dict[int, np.ndarray | None]]:
        """(the user's user-user list, {neighbour id: their stored ratings}), the same as
        ``lists_for_user(user_id, [])`` then ``user_ratings`` of its ids: in one round
        trip (a script reads the list and then the ratings it names) when the ratings
        come to at most ``inline_bytes``, else in two."""
        return self._list_script(user_id, inline_bytes=inline_bytes)[1]

    def ready_or_neighbours(self, user_id: int, *, inline_bytes: int = INLINE_RATINGS_BYTES):
        """(``ready_list(user_id)``, and when the user has no stored list,
        ``user_list_and_ratings(user_id)``, else None) in one round trip (two when the
        neighbours' ratings are larger than ``inline_bytes``): a first read needs both, a
        stored read only the first."""
        return self.ready_neighbours_catalogue(user_id, inline_bytes=inline_bytes)[:2]

    def ready_neighbours_catalogue(self, user_id: int, *, inline_bytes: int = INLINE_RATINGS_BYTES):
        """``ready_or_neighbours(user_id)`` and, with a stored list, the catalogue's
        generation (``catalogue_generation``, read in the same round trip: what a stored
        read's item cards are cached under), else None.

        A stored read is one pipelined HGET and GET: a script call costs Redis ~20 us of
        CPU against ~3 for the two commands. Only a user without a stored list (a first
        read, which takes milliseconds) then runs the script, a second round trip."""
        if self.meta.get("ready_format") == READY_FORMAT:
            pipe = client().pipeline(transaction=False)
            pipe.hget(version_key(self.version, "ready"), int(user_id))
            pipe.get(key("catalogue"))
            ready, generation = pipe.execute()
            if ready is not None:
                if generation is None:
                    generation = catalogue_generation()
                return decode_ready(ready), None, generation
        return self._list_script(user_id, inline_bytes=inline_bytes)

    def _list_script(self, user_id: int, *, inline_bytes: int):
        keys = [version_key(self.version, "uu"), version_key(self.version, "ur")]
        script = _script(client(), _LIST_AND_RATINGS)
        raw = script(keys=keys, args=[int(user_id), int(inline_bytes)])
        user_list = decode_neighbours(raw[1])
        if user_list is None:
            return None, (None, {}), None
        ids = user_list["id"].tolist()
        if raw[0] == 0:  # too large to come through the script
            return None, (user_list, self.user_ratings(ids)), None
        ratings = {i: decode_ratings(r) for i, r in zip(ids, raw[2:], strict=True)}
        return None, (user_list, ratings), None

    def ready_list(self, user_id: int) -> tuple[str, np.ndarray] | None:
        """(stamp, rows) of the user's stored list; None when this version has none (or
        stored them in another layout)."""
        if self.meta.get("ready_format") != READY_FORMAT:
            return None
        return decode_ready(client().hget(version_key(self.version, "ready"), user_id))

    def item_neighbours(self, item_ids: Iterable[int]) -> dict[int, np.ndarray | None]:
        return self._many("ii", item_ids, decode_neighbours)

    def prediction_neighbours(self, item_ids: Iterable[int]) -> dict[int, np.ndarray | None]:
        return self._many("ip", item_ids, decode_neighbours)

    def user_neighbours(self, user_ids: Iterable[int]) -> dict[int, np.ndarray | None]:
        return self._many("uu", user_ids, decode_neighbours)

    def user_ratings(self, user_ids: Iterable[int]) -> dict[int, np.ndarray | None]:
        return self._many("ur", user_ids, decode_ratings)

    def biases(self, *, user_id: int | None, item_ids: Iterable[int]) -> tuple[float, float, dict]:
        """(global mean, user bias, {item id: item bias}); unknown ids have bias 0."""
        item_ids = list(item_ids)
        fields = ["mu", f"u:{user_id}", *(f"i:{i}" for i in item_ids)]
        raw = client().hmget(version_key(self.version, "bias"), fields)
        values = [0.0 if r is None else float(np.frombuffer(r, "<f8")[0]) for r in raw]
        return values[0], values[1], dict(zip(item_ids, values[2:], strict=True))


# A user's user-user list (NEIGHBOUR_DTYPE rows: the id is the first 4 bytes of 12,
# little-endian int32) and then the stored ratings of every id in it, when they come to
# at most ARGV[2] bytes (HSTRLEN is O(1)): past that, copying them into the script and
# out again cost more than a second round trip (12 ms against 1-5 for the 1.6 MB of a
# user whose neighbours rated 200k items at 25M), so the caller reads them with HMGET.
# KEYS: the uu and ur hashes; ARGV: the user id, the byte limit. Returns {false, false}
# (no list), {false, list, ratings of each listed id...} or {0, list} (the ratings left
# to the caller).
_LIST_AND_RATINGS = """
local list = redis.call('hget', KEYS[1], ARGV[1])
if not list then return {false, false} end
local ids = {}
for at = 1, #list, 12 do ids[#ids + 1] = struct.unpack('<i4', list, at) end
local out = {false, list}
if #ids > 0 then
  local size, limit = 0, tonumber(ARGV[2])
  for _, id in ipairs(ids) do
    size = size + redis.call('hstrlen', KEYS[2], id)
    if size > limit then return {0, list} end
  end
  for _, r in ipairs(redis.call('hmget', KEYS[2], unpack(ids))) do out[#out + 1] = r end
end
return out
"""


@cache
def _script(r: redis.Redis, source: str):
    """``source`` on ``r`` run by its digest (EVALSHA), loaded again when the server
    lacks it (redis-py's ``Script``)."""
    return r.register_script(source)


# -- the catalogue's generation ------------------------------------------------------------
def catalogue_generation() -> bytes:
    """A token that changes whenever an item's title, year or genres may have; processes
    cache the static parts of item cards under it (``catalog.selectors.item_cards``).
    An edit deletes it (``catalogue_generation_bump``) and the next reader makes a new
    random one, so a Redis emptied or restarted without its data starts a new one too."""
    pipe = client().pipeline(transaction=False)
    pipe.set(key("catalogue"), secrets.token_hex(8), nx=True)
    pipe.get(key("catalogue"))
    return pipe.execute()[1]


def catalogue_generation_bump() -> None:
    """End the generation: every process drops its cached item cards at its next read
    (which makes the next one). Deleting writes nothing into a Redis that held none."""
    client().delete(key("catalogue"))


_live_cache: dict[str, tuple[float, LiveModel]] = {}


def live_model() -> LiveModel | None:
    """The published model, or None when nothing is published yet.

    A process reuses what it read for ``LIVE_CACHE_SECONDS`` (a new version shows that
    much later; the old one stays readable for its grace period). Raises one of
    ``RedisUnavailable`` when Redis cannot be reached; callers fall back.
    """
    ttl = option("LIVE_CACHE_SECONDS")
    cached = _live_cache.get(settings.REDIS_URL)
    if cached is not None and time.monotonic() - cached[0] < ttl:
        return cached[1]
    r = client()
    version = r.get(key("live"))
    if version is None:
        return None
    version = version.decode()
    meta = r.get(version_key(version, "meta"))
    if meta is None:  # the pointer outlived its version: treat as unpublished
        return None
    model = LiveModel(version=version, meta=json.loads(meta))
    if ttl > 0:
        _live_cache[settings.REDIS_URL] = (time.monotonic(), model)
    return model


# -- writing a version ------------------------------------------------------------------
def write_rows(
    version: str, kind: str, rows: Mapping[int, bytes], *, ttl: int | None, count: bool = True
) -> None:
    """Store ``rows`` (id -> encoded value) under ``kind``; ``count`` them toward completeness."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    pipe = client().pipeline(transaction=False)
    name = version_key(version, kind)
    items = list(rows.items())
    for start in range(0, len(items), 2000):
        pipe.hset(name, mapping=dict(items[start : start + 2000]))
    if count:
        pipe.hincrby(version_key(version, "rows"), kind, len(items))
    if ttl:
        pipe.expire(name, ttl)
        pipe.expire(version_key(version, "rows"), ttl)
    pipe.execute()


def write_patch(
    version: str, rows: Mapping[str, Mapping[int, bytes]], *, delete: Mapping | None = None
) -> None:
    """An incremental update's rows ({kind: {id: encoded}}) and deletions ({kind: ids}) in
    one round trip; not counted toward completeness (the version is published already)."""
    pipe = client().pipeline(transaction=False)
    for kind, entries in rows.items():
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        if entries:
            pipe.hset(version_key(version, kind), mapping=dict(entries))
    for kind, ids in (delete or {}).items():
        if ids:
            pipe.hdel(version_key(version, kind), *ids)
    pipe.execute()


# A list computed on read is kept only while its version is still the live one: a reader
# that resolved the previous version a moment ago must not recreate that version's
# expiring hash without a TTL. ARGV: version, user id, encoded list, read time ("": not
# a read, e.g. the refresh after a rating).
_READY_PUT = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('hset', KEYS[2], ARGV[2], ARGV[3])
if ARGV[4] ~= '' then redis.call('zadd', KEYS[3], ARGV[4], ARGV[2]) end
return 1
"""


def ready_put(version: str, user_id: int, raw: bytes, *, read_at: float | None = None) -> bool:
    """Keep one user's stored list (``encode_ready``) in the live ``version``; with
    ``read_at`` (Unix seconds) note the user as a reader (``readers_since``). False when
    ``version`` is no longer live (nothing written)."""
    keys = (key("live"), version_key(version, "ready"), key("readers"))
    args = (version, int(user_id), raw, "" if read_at is None else repr(float(read_at)))
    return bool(client().eval(_READY_PUT, len(keys), *keys, *args))


def readers_since(since: float) -> dict[int, float]:
    """{user id: Unix time} of users whose list was computed on read at ``since`` or later;
    older entries are dropped (the set stays as small as the recent readers)."""
    r = client()
    r.zremrangebyscore(key("readers"), "-inf", f"({since!r}")
    return {int(u): float(t) for u, t in r.zrange(key("readers"), 0, -1, withscores=True)}


def read_rows(version: str, kind: str) -> Iterator[tuple[int, bytes]]:
    """Every (id, encoded row) of ``kind`` in ``version``, streamed in batches."""
    for field, value in client().hscan_iter(version_key(version, kind), count=5000):
        yield int(field), value


def write_biases(version: str, biases: Mapping[str, float], *, ttl: int | None) -> None:
    name = version_key(version, "bias")
    pipe = client().pipeline(transaction=False)
    items = [(field, np.float64(value).tobytes()) for field, value in biases.items()]
    for start in range(0, len(items), 5000):
        pipe.hset(name, mapping=dict(items[start : start + 5000]))
    if ttl:
        pipe.expire(name, ttl)
    pipe.execute()


def mark_written(version: str, kind: str, n: int, *, ttl: int | None) -> None:
    """Count ``n`` rows of ``kind`` toward completeness without writing a hash (the model
    parts, written as an array set)."""
    pipe = client().pipeline(transaction=False)
    pipe.hincrby(version_key(version, "rows"), kind, n)
    if ttl:
        pipe.expire(version_key(version, "rows"), ttl)
    pipe.execute()


def rows_written(version: str) -> dict[str, int]:
    raw = client().hgetall(version_key(version, "rows"))
    return {k.decode(): int(v) for k, v in raw.items()}


def publish(
    version: str, meta: dict, *, expected_rows: Mapping[str, int], holder: str
) -> str | None:
    """Check ``version`` is complete, then make it the live one in one step, releasing the
    recompute lock in that same step, and only while ``holder`` still holds the lock.

    Returns the previous live version (now expiring), or None. Raises ``IncompleteModel``
    when a kind has fewer rows than expected and ``LockLost`` when ``holder`` no longer
    holds the lock (it lapsed, perhaps another run took it and declared this one lost);
    the live version is then left alone.
    """
    written = rows_written(version)
    missing = {k: (written.get(k, 0), n) for k, n in expected_rows.items() if written.get(k, 0) < n}
    if missing:
        raise IncompleteModel(version, missing)
    meta = {**meta, "ready_format": READY_FORMAT}
    r = client()
    with r.pipeline(transaction=True) as pipe:
        # WATCH makes the flip conditional: if the lock changes between this check and
        # EXEC (it lapses, another run takes it), EXEC does nothing.
        pipe.watch(key("lock"))
        if pipe.get(key("lock")) != holder.encode():
            raise LockLost(holder)
        pipe.multi()
        for name in VERSION_KEYS:
            pipe.persist(version_key(version, name))
        pipe.set(version_key(version, "meta"), json.dumps(meta))
        pipe.getset(key("live"), version)
        pipe.delete(key("lock"))
        try:
            previous = pipe.execute()[-2]
        except redis.WatchError:
            raise LockLost(holder) from None
    previous = previous.decode() if previous else None
    if previous and previous != version:
        grace = option("OLD_VERSION_GRACE_SECONDS")
        pipe = r.pipeline(transaction=False)
        for name in VERSION_KEYS:
            pipe.expire(version_key(previous, name), grace)
        pipe.execute()
        snapshot_drop(previous)
    return previous


class LockLost(RuntimeError):
    def __init__(self, holder: str):
        super().__init__(f"{holder} no longer holds the recompute lock; not published")


class IncompleteModel(RuntimeError):
    def __init__(self, version: str, missing: dict):
        detail = ", ".join(f"{k}: {have} of {want} rows" for k, (have, want) in missing.items())
        super().__init__(f"version {version} is incomplete ({detail}); not published")
        self.missing = missing


def discard(version: str) -> bool:
    """Delete a version that will never be published (a failed build); never the live one.
    True when deleted."""
    with client().pipeline(transaction=True) as pipe:
        pipe.watch(key("live"))
        live = pipe.get(key("live"))
        if live is not None and live.decode() == version:
            return False
        pipe.multi()
        pipe.delete(*(version_key(version, name) for name in VERSION_KEYS))
        try:
            pipe.execute()
        except redis.WatchError:  # the pointer moved meanwhile: look again
            return discard(version)
    snapshot_drop(version)
    return True


# -- the recompute lock ------------------------------------------------------------------
# Compare-and-act scripts: only the holder may extend or release the lock.
_EXTEND = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"  # noqa: E501
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"  # noqa: E501


def lock_acquire(holder: str, ttl_seconds: int) -> bool:
    """Take the recompute lock for ``holder``; it expires unless extended (crash safety)."""
    return bool(client().set(key("lock"), holder, nx=True, px=int(ttl_seconds * 1000)))


def lock_extend(holder: str, ttl_seconds: int) -> bool:
    return bool(client().eval(_EXTEND, 1, key("lock"), holder, int(ttl_seconds * 1000)))


def lock_release(holder: str) -> bool:
    return bool(client().eval(_RELEASE, 1, key("lock"), holder))


def lock_holder() -> str | None:
    value = client().get(key("lock"))
    return value.decode() if value else None


# -- ratings snapshots: what shards and incremental updates of a version start from ------
# A snapshot is named arrays. With SNAPSHOT_DIR set it is a folder of .npy files there;
# otherwise it lives in Redis as chunks (no value near Redis's 512 MB string limit) and
# each machine copies it once into its local cache folder. Either way every process maps
# the files read-only (np.load(mmap_mode="r")): one copy per machine, in the page cache,
# however many worker processes read it. Arrays derived from a snapshot (the same for
# every process) are cached beside it the same way (``snapshot_derived``).
#
# The fitted ranking model's parts (``part="model"``) are stored and mapped the same way.
def _snapshot_folder(version: str, part: str = "snapshot") -> Path:
    name = f"{ARRAY_SETS[part]}-{version}"
    if option("SNAPSHOT_DIR"):
        return Path(option("SNAPSHOT_DIR")) / name
    cache = option("SNAPSHOT_CACHE_DIR") or Path(settings.VAR_DIR) / "snapshot-cache"
    return Path(cache) / name


def _write_folder(folder: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as ``folder``/<name>.npy, appearing all at once (a renamed folder)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}-{time.monotonic_ns()}")
    tmp.mkdir()
    for name, array in arrays.items():
        np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
    try:
        tmp.rename(folder)
    except OSError:  # another process finished the same copy first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        if not folder.exists():
            raise


def _map_folder(folder: Path) -> dict[str, np.ndarray]:
    return {
        path.stem: np.load(path, mmap_mode="r", allow_pickle=False)
        for path in sorted(folder.glob("*.npy"))
    }


def snapshot_put(
    version: str, arrays: Mapping[str, np.ndarray], *, ttl: int | None, part: str = "snapshot"
) -> None:
    """Store named arrays: a folder in SNAPSHOT_DIR when set, else chunks in Redis."""
    if option("SNAPSHOT_DIR"):
        _write_folder(_snapshot_folder(version, part), arrays)
        return
    _hash_put_arrays(version_key(version, part), "", arrays, ttl=ttl, replace=True)


def _hash_put_arrays(
    name: str, prefix: str, arrays: Mapping[str, np.ndarray], *, ttl: int | None, replace=False
) -> None:
    """Named arrays into hash ``name`` as fields ``<prefix><array>:<n>``, chunks of at most
    SNAPSHOT_CHUNK_BYTES, then their ``<prefix>layout`` (written last: its presence means
    the arrays are complete)."""
    chunk = int(option("SNAPSHOT_CHUNK_BYTES"))
    layout = {}
    pipe = client().pipeline(transaction=False)
    if replace:
        pipe.delete(name)
    for array_name, array in arrays.items():
        # flat bytes; memoryview.cast refuses a shape with a zero (e.g. a rating model's
        # side-feature arrays for a catalogue without genres), a uint8 view does not
        raw = memoryview(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
        n_chunks = max(1, -(-len(raw) // chunk))
        layout[array_name] = [array.dtype.str, list(array.shape), n_chunks]
        for c in range(n_chunks):
            pipe.hset(name, f"{prefix}{array_name}:{c}", bytes(raw[c * chunk : (c + 1) * chunk]))
            if len(pipe) >= 8:  # bound what one round trip carries
                pipe.execute()
    pipe.hset(name, f"{prefix}layout", json.dumps(layout))
    if ttl:
        pipe.expire(name, ttl)
    pipe.execute()


def _hash_get_arrays(name: str, prefix: str, what: str) -> dict[str, np.ndarray]:
    """The arrays ``_hash_put_arrays`` stored (in memory); ``LookupError`` when gone."""
    layout = client().hget(name, f"{prefix}layout")
    if layout is None:
        raise LookupError(f"{what} is gone")
    arrays = {}
    for array_name, (dtype, shape, n_chunks) in json.loads(layout).items():
        fields = [f"{prefix}{array_name}:{c}" for c in range(n_chunks)]
        chunks = [client().hget(name, f) for f in fields]  # one chunk in memory at a time
        if any(c is None for c in chunks):
            raise LookupError(f"{what} is incomplete")
        arrays[array_name] = np.frombuffer(b"".join(chunks), dtype=dtype).reshape(shape)
        del chunks
    return arrays


def snapshot_get(version: str, *, part: str = "snapshot") -> dict[str, np.ndarray]:
    """The snapshot's arrays (or another ``part``), mapped read-only; from Redis, copied
    to this machine first.

    Raises ``LookupError`` when the version's snapshot is gone.
    """
    folder = _snapshot_folder(version, part)
    if folder.is_dir():
        return _map_folder(folder)
    if option("SNAPSHOT_DIR"):
        raise LookupError(f"no {part} arrays for version {version} at {folder}")
    arrays = _hash_get_arrays(
        version_key(version, part), "", f"the {part} arrays of version {version}"
    )
    _write_folder(folder, arrays)
    del arrays
    _drop_other_cached(version, part)
    return _map_folder(folder)


def snapshot_cache_put(version: str, arrays: Mapping[str, np.ndarray]) -> None:
    """This machine's copy of a snapshot just stored (``snapshot_put``) from the arrays at
    hand, as ``snapshot_get`` would copy it from Redis; nothing to do with SNAPSHOT_DIR
    (the stored folder is the copy)."""
    folder = _snapshot_folder(version)
    if option("SNAPSHOT_DIR") or folder.is_dir():
        return
    _write_folder(folder, arrays)
    _drop_other_cached(version)


def snapshot_derived(version: str, name: str, make) -> np.ndarray:
    """An array every process derives alike from ``version``'s snapshot: made once per
    machine by ``make()``, saved beside the snapshot, then mapped read-only."""
    folder = _snapshot_folder(version)
    if not folder.is_dir():  # the prepare step's own process, or a dropped version
        return make()
    path = folder / f"derived-{name}.npy"
    if not path.exists():
        array = np.ascontiguousarray(make())
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{time.monotonic_ns()}.npy")
        np.save(tmp, array, allow_pickle=False)
        tmp.replace(path)
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _drop_other_cached(version: str, part: str = "snapshot") -> None:
    """Remove local copies of other versions not touched for a while (a process still
    mapping one keeps its pages: unlinking never invalidates a mapping)."""
    folder = _snapshot_folder(version, part)
    for other in folder.parent.glob(f"{ARRAY_SETS[part]}-*"):
        try:  # another process may rename (its .tmp- copy) or remove it meanwhile
            idle = time.time() - other.stat().st_mtime
        except FileNotFoundError:
            continue
        if other != folder and idle > 600:
            shutil.rmtree(other, ignore_errors=True)


def snapshot_drop(version: str) -> None:
    for part in ARRAY_SETS:
        shutil.rmtree(_snapshot_folder(version, part), ignore_errors=True)
    if option("SNAPSHOT_DIR"):
        shutil.rmtree(_partial_folder(version), ignore_errors=True)


# -- partial results of a version being built (the symmetric pass's shards, until merged) --
# Named groups of arrays, stored like the snapshot: chunks in the version's "partial" hash,
# or with SNAPSHOT_DIR a folder of .npy files per group there (mapped when read).
def _partial_folder(version: str) -> Path:
    return Path(option("SNAPSHOT_DIR")) / f"partial-{version}"


def partial_put(
    version: str, group: str, arrays: Mapping[str, np.ndarray], *, ttl: int | None
) -> None:
    if option("SNAPSHOT_DIR"):
        folder = _partial_folder(version) / group
        shutil.rmtree(folder, ignore_errors=True)  # a shard run again replaces its own
        _write_folder(folder, arrays)
        return
    _hash_put_arrays(version_key(version, "partial"), f"{group}|", arrays, ttl=ttl)


def partial_groups(version: str) -> list[str]:
    """The complete groups stored for ``version``."""
    if option("SNAPSHOT_DIR"):
        folder = _partial_folder(version)
        return (
            sorted(p.name for p in folder.iterdir() if ".tmp-" not in p.name)
            if (folder.is_dir())
            else []
        )
    fields = client().hkeys(version_key(version, "partial"))
    return sorted(f.decode()[: -len("|layout")] for f in fields if f.endswith(b"|layout"))


def partial_get(version: str, group: str) -> dict[str, np.ndarray]:
    """A group's arrays (mapped read-only from SNAPSHOT_DIR); ``LookupError`` when gone."""
    if option("SNAPSHOT_DIR"):
        folder = _partial_folder(version) / group
        if not folder.is_dir():
            raise LookupError(f"partial lists {group} of version {version} are gone")
        return _map_folder(folder)
    what = f"partial lists {group} of version {version}"
    return _hash_get_arrays(version_key(version, "partial"), f"{group}|", what)


def partial_drop(version: str) -> None:
    """Delete every partial group of ``version`` (once merged, or with the run)."""
    if option("SNAPSHOT_DIR"):
        shutil.rmtree(_partial_folder(version), ignore_errors=True)
    client().delete(version_key(version, "partial"))


# -- the ranking model's tuned weights, kept across versions ---------------------------------
def model_tuning() -> dict | None:
    """The last tuning of the ranking model's weights (``model_scoring.fit_and_store``):
    JSON with "weights" and "tuned_at" (epoch seconds); None before the first."""
    raw = client().get(key("model-tuning"))
    return None if raw is None else json.loads(raw)


def model_tuning_put(tuning: dict) -> None:
    client().set(key("model-tuning"), json.dumps(tuning))


# -- debouncing the incremental update: one queued task per user at a time ----------------
def pending_add(user_id: int, item_id: int | None) -> bool:
    """Note ``item_id`` as changed for ``user_id`` (None: only the user's list is stale);
    True when no update is queued yet."""
    pipe = client().pipeline(transaction=True)
    if item_id is not None:
        pipe.sadd(key("pending", user_id), item_id)
        pipe.expire(key("pending", user_id), 3600)
    pipe.set(key("queued", user_id), 1, nx=True, ex=60)
    return bool(pipe.execute()[-1])


def pending_take(user_id: int) -> list[int]:
    """Take the changed items of ``user_id`` and let the next rating queue a new update."""
    pipe = client().pipeline(transaction=True)
    pipe.delete(key("queued", user_id))
    pipe.smembers(key("pending", user_id))
    pipe.delete(key("pending", user_id))
    _, members, _ = pipe.execute()
    return sorted(int(m) for m in members)


# -- coalescing the stored-list refresh: at most one queued per user ----------------------
def list_refresh_claim(user_id: int) -> bool:
    """Mark ``user_id``'s stored list as due for a refresh; True when none was queued yet
    (the caller queues it). The mark lapses, so a refresh lost with its worker does not
    block the next one for longer than that."""
    return bool(client().set(key("list-queued", user_id), 1, nx=True, ex=300))


def list_refresh_take(user_id: int) -> None:
    """Before the refresh reads anything: a change after this queues another refresh."""
    client().delete(key("list-queued", user_id))


# -- coalescing the deferred rows of popular items: one task for all pending --------------
def item_rows_pending_add(user_id: int, item_ids: list[int]) -> bool:
    """Note ``item_ids`` (rated by ``user_id``) as due for their rows; True when no refresh
    is queued yet (the caller queues it)."""
    pipe = client().pipeline(transaction=True)
    pipe.sadd(key("item-rows", "items"), *item_ids)
    pipe.sadd(key("item-rows", "users"), user_id)
    pipe.expire(key("item-rows", "items"), 3600)
    pipe.expire(key("item-rows", "users"), 3600)
    pipe.set(key("item-rows", "queued"), 1, nx=True, ex=300)
    return bool(pipe.execute()[-1])


def item_rows_take() -> tuple[list[int], list[int]]:
    """(users, items) noted so far, taken; a note after this queues another refresh."""
    pipe = client().pipeline(transaction=True)
    pipe.delete(key("item-rows", "queued"))
    for name in ("users", "items"):
        pipe.smembers(key("item-rows", name))
        pipe.delete(key("item-rows", name))
    _, users, _, items, _ = pipe.execute()
    return sorted(int(u) for u in users), sorted(int(i) for i in items)
