"""The Redis layout: encoding, stored-empty versus missing, publishing, the lock."""

import time

import numpy as np
import pytest

from recommendations import store


def test_neighbour_lists_round_trip_with_explicit_dtypes():
    raw = store.encode_neighbours(np.array([7, 3]), np.array([0.5, 0.25]), np.array([4, 2]))
    assert len(raw) == 2 * 12  # int32 id, float32 score, int32 support
    decoded = store.decode_neighbours(raw)
    assert decoded["id"].tolist() == [7, 3]
    assert decoded["score"].tolist() == [0.5, 0.25]
    assert decoded["support"].tolist() == [4, 2]
    assert store.decode_neighbours(None) is None
    assert len(store.decode_neighbours(b"")) == 0


def test_rows_are_compact_and_an_id_beyond_int32_is_refused_not_wrapped():
    assert store.READY_DTYPE.itemsize == 4 + 4 + 4 + 4 + 2 * 3 * 4 + 1
    assert len(store.encode_ratings(np.array([5]), np.array([4.5]))) == 8
    with pytest.raises(OverflowError):
        store.encode_neighbours(np.array([2**31]), np.array([0.5]), np.array([1]))


def _publish_small(version, rows):
    store.write_rows(version, "ii", rows, ttl=60)
    assert store.lock_acquire(f"build:{version}", 60)
    return store.publish(
        version, {"version": version}, expected_rows={"ii": len(rows)}, holder=f"build:{version}"
    )


def test_a_stored_empty_list_is_not_a_missing_one(rec_redis):
    _publish_small("v1", {1: store.encode_neighbours([2], [0.9], [3]), 2: b""})
    model = store.live_model()
    lists = model.item_neighbours([1, 2, 99])
    assert lists[1]["id"].tolist() == [2]
    assert lists[2] is not None and len(lists[2]) == 0
    assert lists[99] is None


def test_publish_refuses_an_incomplete_version_and_leaves_the_live_one(rec_redis):
    _publish_small("v1", {1: b""})
    store.write_rows("v2", "ii", {1: b""}, ttl=60)
    with pytest.raises(store.IncompleteModel, match="ii: 1 of 2 rows"):
        store.publish("v2", {"version": "v2"}, expected_rows={"ii": 2}, holder="build:v2")
    assert store.live_model().version == "v1"


def test_only_the_lock_holder_publishes_and_publishing_frees_the_lock(rec_redis):
    _publish_small("v1", {1: b""})
    assert store.lock_holder() is None  # released in the flip itself
    store.write_rows("v2", "ii", {1: b""}, ttl=60)
    for holder in (None, "run:other"):  # lapsed, or lapsed and taken by another run
        if holder:
            store.lock_acquire(holder, 60)
        with pytest.raises(store.LockLost):
            store.publish("v2", {"version": "v2"}, expected_rows={"ii": 1}, holder="run:lost")
        assert store.live_model().version == "v1"
    assert store.lock_holder() == "run:other"


def test_the_live_version_is_never_discarded(rec_redis):
    _publish_small("v1", {1: b""})
    assert store.discard("v1") is False
    assert store.live_model().item_neighbours([1])[1] is not None
    store.write_rows("v2", "ii", {1: b""}, ttl=60)
    assert store.discard("v2") is True
    assert not rec_redis.exists(store.version_key("v2", "ii"))


def test_publish_flips_in_one_step_and_lets_the_old_version_expire(rec_redis):
    _publish_small("v1", {1: b""})
    assert rec_redis.ttl(store.version_key("v1", "ii")) == -1  # published: no expiry
    assert _publish_small("v2", {1: b"", 2: b""}) == "v1"
    assert store.live_model().version == "v2"
    assert 0 < rec_redis.ttl(store.version_key("v1", "ii")) <= 120
    assert rec_redis.ttl(store.version_key("v2", "ii")) == -1


def test_nothing_published_is_none_not_an_error(rec_redis):
    assert store.live_model() is None


def test_only_the_holder_extends_or_releases_the_lock_and_it_lapses(rec_redis):
    assert store.lock_acquire("run:1", 1)
    assert not store.lock_acquire("run:2", 1)
    assert not store.lock_extend("run:2", 1)
    assert not store.lock_release("run:2")
    assert store.lock_holder() == "run:1"
    time.sleep(1.1)  # a crashed holder cannot keep it
    assert store.lock_acquire("run:2", 5)
    assert store.lock_release("run:2")
    assert store.lock_holder() is None


def test_an_unreachable_redis_raises_the_fallback_errors(settings):
    from recsite.redis_server import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    store._client_for.cache_clear()
    try:
        with pytest.raises(store.RedisUnavailable):
            store.live_model()
    finally:
        store._client_for.cache_clear()


def test_dropping_old_local_copies_skips_one_another_process_renamed_meanwhile(
    rec_redis, settings, tmp_path, monkeypatch
):
    """CI once failed here: a worker listed another's ``.tmp-`` copy, the other renamed it
    into place, and the first's ``stat`` of the listed name raised FileNotFoundError."""
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "SNAPSHOT_CACHE_DIR": str(tmp_path)}
    store.snapshot_put("v1", {"a": np.arange(3)}, ttl=60)
    store.snapshot_put("v2", {"a": np.arange(4)}, ttl=60)
    store.snapshot_get("v1")
    vanishing = tmp_path / f"{store.ARRAY_SETS['snapshot']}-v1.tmp-1-2"
    real_glob = type(tmp_path).glob

    def glob_then_rename(self, pattern):  # listed, then gone before it is looked at
        listed = list(real_glob(self, pattern))
        return [*listed, vanishing] if pattern.endswith("-*") else listed

    monkeypatch.setattr(type(tmp_path), "glob", glob_then_rename)
    assert store.snapshot_get("v2")["a"].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("through", ["redis", "folder"])
def test_array_sets_keep_shapes_dtypes_and_empty_arrays(rec_redis, settings, tmp_path, through):
    """A 1M-rating recompute once failed storing the rating model: a catalogue without
    genres gives side-feature arrays of shape (0, k), which ``memoryview.cast`` refused."""
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "SNAPSHOT_CACHE_DIR": str(tmp_path)}
    if through == "folder":
        settings.RECOMMENDATIONS["SNAPSHOT_DIR"] = str(tmp_path / "snapshots")
    arrays = {
        "empty_rows": np.zeros((0, 10), dtype=np.float32),
        "empty": np.array([], dtype=np.int64),
        "matrix": np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2],  # not contiguous
        "flags": np.array([True, False, True]),
    }
    store.snapshot_put("v1", arrays, ttl=60, part="fm")
    got = store.snapshot_get("v1", part="fm")
    assert sorted(got) == sorted(arrays)
    for name, array in arrays.items():
        assert got[name].dtype == array.dtype and got[name].shape == array.shape, name
        assert np.array_equal(got[name], array), name


@pytest.mark.parametrize("inline_bytes", [store.INLINE_RATINGS_BYTES, 16, 0])
def test_a_users_list_and_their_neighbours_ratings_come_in_one_round_trip(rec_redis, inline_bytes):
    """``user_list_and_ratings`` reads what ``lists_for_user`` then ``user_ratings`` read
    in two: in list order, a neighbour without stored ratings as None, a large id (the
    script decodes the int32 ids itself), and a user without a list as (None, {}); the
    same when the ratings (24 bytes here) are more than the script returns itself and the
    caller reads them in a second round trip."""
    big = 2**31 - 1
    store.write_rows(
        "v1", "uu", {1: store.encode_neighbours([big, 3, 4], [0.9, 0.5, 0.2], [5, 4, 3])}, ttl=60
    )
    store.write_rows(
        "v1",
        "ur",
        {big: store.encode_ratings([10, 11], [4.5, 2.0]), 4: store.encode_ratings([12], [5.0])},
        ttl=60,
    )
    model = store.LiveModel("v1", {})
    user_list, ratings = model.user_list_and_ratings(1, inline_bytes=inline_bytes)
    _, expected_list = model.lists_for_user(1, [])
    expected = model.user_ratings([big, 3, 4])
    assert user_list.tobytes() == expected_list.tobytes()
    assert list(ratings) == [big, 3, 4]
    assert ratings[3] is None and expected[3] is None
    for i in (big, 4):
        assert ratings[i].tobytes() == expected[i].tobytes()
    assert ratings[big]["item"].tolist() == [10, 11]
    assert model.user_list_and_ratings(2, inline_bytes=inline_bytes) == (None, {})


def test_a_stored_list_or_else_the_neighbours(rec_redis):
    """``ready_or_neighbours``: the stored list alone when there is one (a stored read
    needs nothing else), else no list and the user's neighbour list and ratings."""
    store.write_rows("v1", "uu", {1: store.encode_neighbours([3], [0.9], [5])}, ttl=60)
    store.write_rows("v1", "ur", {3: store.encode_ratings([10], [4.5])}, ttl=60)
    rows = np.zeros(2, dtype=store.READY_DTYPE)
    rows["item"] = [10, 11]
    store.write_rows("v1", "ready", {2: store.encode_ready("s", rows)}, ttl=60)
    model = store.LiveModel("v1", {"ready_format": store.READY_FORMAT})
    stored, neighbours = model.ready_or_neighbours(2)
    assert stored[0] == "s" and stored[1]["item"].tolist() == [10, 11] and neighbours is None
    for inline_bytes in (store.INLINE_RATINGS_BYTES, 0):
        stored, (user_list, ratings) = model.ready_or_neighbours(1, inline_bytes=inline_bytes)
        assert stored is None and user_list["id"].tolist() == [3]
        assert ratings[3]["item"].tolist() == [10]
    # a version whose stored lists have another layout: none read, the neighbours are
    old = store.LiveModel("v1", {"ready_format": store.READY_FORMAT - 1})
    assert old.ready_or_neighbours(2) == (None, (None, {}))


def test_a_stored_read_runs_no_script_and_reads_the_catalogue_generation(rec_redis):
    """A stored read is an HGET and a GET (a Lua script costs Redis several times their
    CPU); the generation comes with it, made when there is none; only a user without a
    stored list runs the script."""
    rows = np.zeros(1, dtype=store.READY_DTYPE)
    store.write_rows("v1", "ready", {2: store.encode_ready("s", rows)}, ttl=60)
    store.write_rows("v1", "uu", {1: store.encode_neighbours([3], [0.9], [5])}, ttl=60)
    model = store.LiveModel("v1", {"ready_format": store.READY_FORMAT})
    client = store.client()
    client.delete(store.key("catalogue"))
    client.config_resetstat()
    stored, neighbours, generation = model.ready_neighbours_catalogue(2)
    assert stored[0] == "s" and neighbours is None
    assert generation == client.get(store.key("catalogue")) is not None  # made at once
    assert model.ready_neighbours_catalogue(2)[2] == generation
    calls = client.info("commandstats")
    assert "cmdstat_evalsha" not in calls and "cmdstat_eval" not in calls
    assert calls["cmdstat_hget"]["calls"] == 2
    stored, (user_list, _), generation = model.ready_neighbours_catalogue(1)
    assert stored is None and user_list["id"].tolist() == [3] and generation is None
    calls = client.info("commandstats")
    scripts = [calls.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval")]
    assert sum(scripts) >= 1  # (one more when Redis had to load the script first)
