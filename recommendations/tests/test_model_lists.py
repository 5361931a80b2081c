"""The ranking model in the product: fitted by the recompute, stored with the version,
ranking the stored and live personal lists, folding a new rating in at once, and bringing
items nobody has rated into personal lists with a true reason."""

import uuid

import numpy as np
import pytest
import scipy.sparse as sp
from django.contrib.auth import get_user_model

from catalog import services as catalog_services
from catalog.models import Item
from recommendations import build, model_scoring, pipeline, reads, reasons, store
from recommendations.engine import RatingMatrix
from recommendations.engine.blend import PRODUCT_BLEND, TREND, Blend
from recommendations.engine.data import ItemInfo
from recommendations.engine.ease import EASE

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def model_from_one_rating(settings):
    """The blend serves from one rating here (MODEL_MIN_RATINGS = 1; by default it
    follows MIN_RATINGS_FOR_PERSONAL), so the newcomer below gets a model list."""
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "MODEL_MIN_RATINGS": 1}


def shown(result):
    return [
        (s.item.pk, s.score, s.reason, [b.pk for b in s.because_items]) for s in result.suggestions
    ]


def _new_item_for(user):
    """An item nobody has rated, shaped like the items ``user`` rated 5 (their genres and
    a title word), added before the recompute."""
    loved = Item.objects.filter(ratings__user=user, ratings__score=5).order_by("pk").first()
    item = Item.objects.create(title=f"{loved.title} Returns", year=loved.year)
    item.genres.set(loved.genres.all())
    return item, loved


@pytest.fixture
def with_new_item(rec_redis, demo_catalogue):
    """The demo user, an item nobody rated shaped like one demo loved, and a newcomer who
    rated only that loved item; then a recompute."""
    demo = get_user_model().objects.get(username="demo")
    item, loved = _new_item_for(demo)
    newcomer = get_user_model().objects.create_user("newcomer", password="x")
    catalog_services.rating_upsert(user=newcomer, item=loved, score=5)
    run = pipeline.recompute_sync()
    assert run.status == run.Status.SUCCEEDED, run.error
    return demo, newcomer, item, loved


def test_an_item_without_ratings_enters_personal_lists_with_its_reason(with_new_item, client):
    """Through the home page's "people like you" panel and me/recommendations/, after a
    recompute, for a user with one rating (the blend's "few" segment, no popular
    fallback) and for one with many."""
    demo, newcomer, item, loved = with_new_item
    item.refresh_from_db()
    assert item.rating_count == 0
    assert store.live_model().meta["model"]["n_items_without_ratings"] == 1
    reason = f"New, similar to {loved.title}"

    client.force_login(newcomer)
    page = client.get("/").content.decode()
    panel = page[page.index('id="panel-people-like-you"') :]
    panel = panel[: panel.index("</section>")]
    assert item.title in panel and reason in panel
    api = client.get("/api/v1/me/recommendations/", {"limit": 10}).json()
    assert api["source"] == "personal"
    assert {"id": item.pk, "reason": reason} in [
        {"id": e["item"]["id"], "reason": e["reason"]} for e in api["results"]
    ]

    client.force_login(demo)
    api = client.get("/api/v1/me/recommendations/", {"limit": 30}).json()
    entry = next(e for e in api["results"] if e["item"]["id"] == item.pk)
    named = entry["reason"].removeprefix("New, similar to ")
    assert entry["reason"] != named
    assert demo.ratings.get(item__title=named).score >= reasons.LIKED


def test_the_stored_lists_equal_the_live_computation_with_the_model(with_new_item):
    model = store.live_model()
    users = get_user_model().objects.filter(ratings__isnull=False).distinct()
    assert model.meta["n_ready_lists"] == users.count()  # one rating is enough
    for user in users:
        stored = reads._from_ready_list(model, user.pk, 10, True)
        live = reads._personal(user=user, limit=10, genre="", user_weight=1.0, explain=True)
        assert stored is not None and shown(stored) == shown(live), user


def test_a_rating_changes_the_list_at_once_as_a_full_recompute_would(with_new_item):
    """The update after a rating folds it in through the stored model parts; the list
    equals what a full recompute's list stage gives with the same parts and rows."""
    demo = with_new_item[0]
    model = store.live_model()
    _, before = model.ready_list(demo.pk)
    first = Item.objects.get(pk=int(before["item"][0]))
    catalog_services.rating_upsert(user=demo, item=first, score=1)
    live = reads.recommendations_for_user(user=demo, limit=10)  # the stamp moved: live
    assert live.source == reads.PERSONAL
    assert first.pk not in [s.item.pk for s in live.suggestions]
    assert [s.item.pk for s in live.suggestions] != before["item"][:10].tolist()

    pipeline.model_update_for_rating(user_id=demo.pk, item_ids=[first.pk])
    _, folded = model.ready_list(demo.pk)
    assert folded["item"][:10].tolist() == [s.item.pk for s in live.suggestions]

    arrays = build.snapshot_arrays(build.snapshot_ratings(), build.snapshot_list_context())
    inputs = build.ModelInputs.from_snapshot(arrays)
    lists = build.ListInputs.load(model.version, inputs, arrays)
    u = inputs.matrix.user_index(demo.pk)
    parts = model_scoring.parts_for(model.version)
    _, full = store.decode_ready(build.compute_ready(inputs, lists, u, u + 1, model=parts)[demo.pk])
    assert full["item"].tolist() == folded["item"].tolist()
    np.testing.assert_allclose(full["score"], folded["score"], rtol=1e-6, atol=1e-6)
    for name in ("people", "people_sum", "because_items", "reason"):
        assert np.array_equal(full[name], folded[name]), name


# -- the parts, without Django ------------------------------------------------------------
def _small(seed=0, n_users=60, n_items=40):
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.25) * rng.integers(1, 11, (n_users, n_items))
    dense[:, -3:] = 0  # three items nobody rated
    csr = sp.csr_matrix(dense / 2.0)
    matrix = RatingMatrix(csr, np.arange(n_users) + 100, np.arange(n_items) * 3 + 7)
    genres = ["Drama", "Comedy", "Sci-Fi", "Action"]
    info = ItemInfo(
        item_ids=matrix.item_ids,
        titles=[f"Story {k % 5} of night" for k in range(n_items)],
        years=np.array([1980.0 + k % 20 for k in range(n_items)]),
        genres=[[genres[k % 4], genres[(k // 4) % 4]] for k in range(n_items)],
        tags=[[] for _ in range(n_items)],
    )
    arrays = {
        "indptr": csr.indptr,
        "indices": csr.indices,
        "data": csr.data,
        "user_ids": matrix.user_ids,
        "item_ids": matrix.item_ids[np.diff(csr.tocsc().indptr) > 0],
    }
    # the snapshot has only rated items: re-index its columns as build.snapshot_arrays does
    rated_cols = np.flatnonzero(np.diff(csr.tocsc().indptr) > 0)
    arrays["indices"] = np.searchsorted(rated_cols, csr.indices).astype(np.int32)
    return matrix, info, arrays


@pytest.mark.parametrize("few_floor", [None, 3])
def test_stored_parts_score_like_the_blend_they_came_from(settings, few_floor):
    """With no pruning, the parts give Blend.score's scores (float32 storage aside), the
    few segment's loved co-occurrence and coverage floor included; items without ratings
    are columns, and the parts round-trip through the store."""
    settings.RECOMMENDATIONS = {
        **settings.RECOMMENDATIONS,
        "MODEL_BLEND": {
            **PRODUCT_BLEND,
            "few_floor": few_floor,
            "ease_keep": 0,
            "rounds": 1,
            "cold_folds": 1,
            "als_iterations": 5,
        },
    }
    matrix, info, arrays = _small()
    fitted = model_scoring.fit_parts(arrays, info=info, active_ids=matrix.item_ids)
    parts = model_scoring.ModelParts(fitted)
    assert parts.item_ids.tolist() == matrix.item_ids.tolist()
    assert (~parts.warm).sum() == 3

    blend = Blend(**settings.RECOMMENDATIONS["MODEL_BLEND"])
    blend.fit(matrix, items=info)
    assert parts.config["few_floor"] == blend.few_floor_ == (few_floor or blend.few_floor_)
    assert blend.weights_["few"]["corated"] > 0
    few = [matrix.csr[u].copy() for u in (1, 2)]  # new users: their first 3 ratings
    for row in few:
        row.data[3:] = 0.0
        row.eliminate_zeros()
    rows = [matrix.csr[u] for u in (0, 5, 17)] + few
    for row in rows:
        ids, scores = matrix.item_ids[row.indices], row.data
        expected = blend.score(row)[0]
        got = parts.score(ids, scores).scores
        np.testing.assert_allclose(got, expected, rtol=0, atol=2e-4)
        one = model_scoring.block_rows(parts, row, matrix.item_ids)
        block = model_scoring.score_block(parts, one)
        np.testing.assert_array_equal(block[0].scores, got)


def test_on_more_ratings_than_the_cap_the_weights_are_tuned_on_a_sample_of_whole_users(
    settings,
):
    """The tuning's cost stays that of MODEL_TUNE_MAX_RATINGS at any size: the weights come
    from a Blend tuned on whole users' rows drawn at random, then the parts are fitted
    once on every rating with them, exactly as a refit with those weights."""
    blend = {**PRODUCT_BLEND, "rounds": 1, "cold_folds": 1, "als_iterations": 5}
    matrix, info, arrays = _small()
    cap = matrix.nnz * 2 // 3
    sample = model_scoring.tuning_sample(matrix, cap)
    assert 0 < sample.nnz <= cap and sample.item_ids.tolist() == matrix.item_ids.tolist()
    for k, user in enumerate(sample.user_ids.tolist()):  # whole rows, not some ratings
        full = matrix.csr[matrix.user_index(user)]
        assert (sample.csr[k] != full).nnz == 0
    assert model_scoring.tuning_sample(matrix, 0) is matrix
    assert model_scoring.tuning_sample(matrix, matrix.nnz) is matrix

    settings.RECOMMENDATIONS = {
        **settings.RECOMMENDATIONS, "MODEL_BLEND": blend, "MODEL_TUNE_MAX_RATINGS": cap,
    }  # fmt: skip
    fitted = model_scoring.fit_parts(arrays, info=info, active_ids=matrix.item_ids)
    config = model_scoring.ModelParts(fitted).config
    assert config["tuned"] and config["tuned_on_ratings"] == sample.nnz
    assert config["weights"] == Blend(**blend).fit(sample, items=info).weights_
    refit = model_scoring.fit_parts(
        arrays, info=info, active_ids=matrix.item_ids, weights=config["weights"]
    )
    for name in fitted.keys() - {"config"}:
        np.testing.assert_allclose(fitted[name], refit[name], rtol=0, atol=1e-5, err_msg=name)


def test_the_model_stage_tunes_the_few_segment_on_first_ratings_as_evaluate_does(settings):
    """The product path and evaluate's ``product`` are one computation: with the
    snapshot's rating times the model stage's weights and floor are those of
    ``Blend.fit`` given the same times (evaluate's call), which keeps each validation
    user's *first* ratings; they are not those of a tuning on random ratings (what the
    stage did without times)."""
    blend = {**PRODUCT_BLEND, "rounds": 1, "cold_folds": 1, "als_iterations": 5}
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "MODEL_BLEND": blend}
    matrix, info, arrays = _small(seed=3, n_users=80)
    # uint32 seconds as build.snapshot_ratings stores them: each user's first ratings are
    # their lowest-rated ones (a history that starts low), unlike a random draw's
    order = np.lexsort((np.random.default_rng(2).random(matrix.nnz), matrix.csr.data))
    times = np.empty(matrix.nnz, dtype=np.uint32)
    times[order] = 1_600_000_000 + 60 * np.arange(matrix.nnz, dtype=np.uint32)
    fitted = model_scoring.fit_parts(
        arrays | {"times": times}, info=info, active_ids=matrix.item_ids
    )
    config = model_scoring.ModelParts(fitted).config
    params = blend | {"max_val_users": config["validation_users"]}
    timed = Blend(**params).fit(matrix, items=info, timestamps=times)
    assert config["weights"] == timed.weights_
    assert config["few_floor"] == timed.few_floor_
    assert config["few_new_at"] == blend["few_new_at"] > 0
    untimed = Blend(**params).fit(matrix, items=info)
    assert (untimed.weights_["few"], untimed.few_floor_) != (
        timed.weights_["few"],
        timed.few_floor_,
    )


def test_the_tuning_scores_at_most_max_cells_validation_cells_per_block(settings):
    """MODEL_TUNE_MAX_CELLS bounds validation users x items, so the tuning's dense blocks
    keep their size on a bigger catalogue; the config records the users it used."""
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "MODEL_TUNE_MAX_CELLS": 24_000_000}
    assert model_scoring.validation_users({"max_val_users": 2000}, 10_914) == 2000
    assert model_scoring.validation_users({"max_val_users": 2000}, 62_000) == 387
    assert model_scoring.validation_users({}, 62_000) == 387
    blend = {**PRODUCT_BLEND, "rounds": 1, "cold_folds": 1, "als_iterations": 5}
    matrix, info, arrays = _small()
    settings.RECOMMENDATIONS = {
        **settings.RECOMMENDATIONS, "MODEL_BLEND": blend, "MODEL_TUNE_MAX_CELLS": 40 * 7,
    }  # fmt: skip
    config = model_scoring.ModelParts(
        model_scoring.fit_parts(arrays, info=info, active_ids=matrix.item_ids)
    ).config
    assert config["validation_users"] == 7
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "MODEL_TUNE_MAX_CELLS": 0}
    assert model_scoring.validation_users({"max_val_users": 2000}, 62_000) == 2000


def test_pruning_keeps_each_rows_largest_weights():
    w = np.array([[0.0, 0.5, -0.9, 0.1], [0.2, 0.0, 0.3, -0.05], [1.0, -2.0, 0.0, 0.4]])
    ease = type("E", (), {"weights_": w, "items_": np.array([0, 2, 3])})()
    pruned = model_scoring._pruned(ease, 5, 2).toarray()
    expected = np.zeros((5, 5))
    expected[0, [2, 3]] = [0.5, -0.9]
    expected[2, [0, 3]] = [0.2, 0.3]
    expected[3, [0, 2]] = [1.0, -2.0]
    np.testing.assert_allclose(pruned, expected)


def test_pruning_an_ease_already_pruned_to_k_keeps_its_weights():
    """EASE(keep=k) leaves at most k weights a row; pruning to the same k keeps each of
    them (the path that skips the partition), and the result is EASE's own weights."""
    matrix, _, _ = _small(2)
    ease = EASE(lam=5.0, keep=3).fit(matrix)
    assert np.count_nonzero(ease.weights_, axis=1).max() <= 3
    pruned = model_scoring._pruned(ease, matrix.n_items, 3).toarray()
    np.testing.assert_array_equal(pruned, ease.weights_)
    np.testing.assert_array_equal(model_scoring._pruned(ease, matrix.n_items, 0).toarray(), pruned)


def test_the_stored_ease_is_the_one_the_blend_pruned_with_its_budget(settings):
    """With ``ease_budget`` raising EASE's keep above ``ease_keep``, the stored weights are
    EASE's own (not pruned again to ``ease_keep``), so the parts score as the blend."""
    settings.RECOMMENDATIONS = {
        **settings.RECOMMENDATIONS,
        "MODEL_BLEND": {**PRODUCT_BLEND, "ease_keep": 2, "ease_budget": 40 * 6},
    }
    matrix, info, arrays = _small(3)
    fitted = model_scoring.fit_parts(arrays, info=info, active_ids=matrix.item_ids)
    ease = EASE(lam=PRODUCT_BLEND["ease_lam"], weighting="rating", keep=2, budget=40 * 6)
    ease.fit(matrix)
    assert ease.keep_ == 6
    n = matrix.n_items
    stored = sp.csr_matrix(
        (fitted["ease_data"], fitted["ease_indices"], fitted["ease_indptr"]), shape=(n, n)
    )
    np.testing.assert_allclose(stored.toarray(), ease.weights_, rtol=1e-6, atol=1e-9)
    assert np.diff(stored.indptr).max() == 6


def test_model_parts_round_trip_through_the_store(rec_redis, settings, tmp_path):
    matrix, info, arrays = _small(1)
    fitted = model_scoring.fit_parts(arrays, info=info, active_ids=matrix.item_ids)
    for snapshot_dir in ("", str(tmp_path / "shared")):
        settings.RECOMMENDATIONS = {
            **settings.RECOMMENDATIONS,
            "SNAPSHOT_DIR": snapshot_dir,
            "SNAPSHOT_CACHE_DIR": str(tmp_path / "cache"),
            "SNAPSHOT_CHUNK_BYTES": 256,  # many chunks
        }
        store.snapshot_put("v1", fitted, ttl=60, part="model")
        back = store.snapshot_get("v1", part="model")
        assert set(back) == set(fitted)
        for name, array in fitted.items():
            assert back[name].dtype == array.dtype and np.array_equal(back[name], array), name
        store.snapshot_drop("v1")
        if snapshot_dir:
            with pytest.raises(LookupError):
                store.snapshot_get("v1", part="model")
    scored = model_scoring.ModelParts(back).score(matrix.item_ids[:4], np.full(4, 4.5))
    assert scored.scores.shape == (matrix.n_items,)


def test_weights_are_tuned_at_most_every_retune_hours(rec_redis, demo_catalogue, settings):
    """The model stage tunes the blend's weights, then reuses them (refitting only the
    components) until MODEL_RETUNE_HOURS have passed."""
    from catalog.models import Rating

    ratings = list(Rating.objects.values_list("user_id", "item_id", "score"))
    u, i, r = (np.array(c) for c in zip(*ratings, strict=True))
    arrays = build.snapshot_arrays(
        {"user": u, "item": i, "score": r.astype(np.float32)}, build.snapshot_list_context()
    )

    def fitted(version):
        model_scoring.fit_and_store(version, arrays, ttl=60)
        return model_scoring.ModelParts(store.snapshot_get(version, part="model")).config

    # Version names of this run only: a version's parts are mapped from the machine's
    # snapshot cache folder, where an earlier run (SQLite before PostgreSQL in CI) may have
    # left other weights under a fixed name such as "v1".
    run = uuid.uuid4().hex[:8]
    first = fitted(f"v1-{run}")
    assert first["tuned"] and store.model_tuning()["weights"] == first["weights"]
    second = fitted(f"v2-{run}")
    assert not second["tuned"] and second["weights"] == first["weights"]
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "MODEL_RETUNE_HOURS": 0}
    assert fitted(f"v3-{run}")["tuned"]


def test_stored_parts_score_the_few_segments_heavy_als_like_the_blend(settings):
    """The few segment's heavily regularised ALS (``als_few``) is stored with the parts and
    scored from the user's live ratings as Blend.score scores it: a new user's list uses
    it, and a user with many ratings (whose weights do not) is not charged its solve."""
    blend_params = {
        **PRODUCT_BLEND,
        "few_als_reg": 50.0,
        "few_floor": 2,
        "ease_keep": 0,
        "als_iterations": 5,
    }
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "MODEL_BLEND": blend_params}
    weights = {
        "many": {"ease": 1.0, "als": 0.5},
        "few": {"corated": 1.0, "als_few": 0.75, "pop": 0.1},
        "cold": {"content": 1.0},
    }
    matrix, info, arrays = _small(seed=3)
    fitted = model_scoring.fit_parts(
        arrays, info=info, active_ids=matrix.item_ids, weights=weights, few_floor=2
    )
    assert fitted["als_few_items"].shape == (matrix.n_items, blend_params["als_factors"])
    parts = model_scoring.ModelParts(fitted)
    assert parts.config["als_few"]["regularization"] == 50.0
    blend = Blend(**blend_params).fit(matrix, items=info, weights=weights)
    assert blend.parts_.als_few is not None
    few = matrix.csr[4].copy()
    few.data[3:] = 0.0
    few.eliminate_zeros()
    most = matrix.csr[int(np.argmax(np.diff(matrix.csr.indptr)))]
    assert most.nnz > blend.few_max
    for row in (few, most):
        ids, scores = matrix.item_ids[row.indices], row.data
        got = parts.score(ids, scores).scores
        np.testing.assert_allclose(got, blend.score(row)[0], rtol=0, atol=2e-4)
        one = model_scoring.block_rows(parts, row, matrix.item_ids)
        block = model_scoring.score_block(parts, one)
        np.testing.assert_array_equal(block[0].scores, got)
    for row, uses in ((few, True), (most, False)):
        raw = parts.components(parts.user_row(matrix.item_ids[row.indices], row.data))
        assert ("als_few" in raw) == uses
    # without the part in the weights, nothing of it is fitted or stored
    plain = model_scoring.fit_parts(
        arrays, info=info, active_ids=matrix.item_ids, weights={**weights, "few": {"corated": 1.0}}
    )
    assert "als_few_items" not in plain


def _loved_by_raters_of(rated_item, item, score_from=4):
    """How many people who rated ``rated_item`` rated ``item`` ``score_from`` or more."""
    raters = Item.objects.get(pk=rated_item.pk).ratings.values_list("user_id", flat=True)
    return item.ratings.filter(user_id__in=list(raters), score__gte=score_from).count()


@pytest.fixture
def few_on_cooccurrence(rec_redis):
    """A fresh tuning whose few segment ranks by the loved co-occurrence alone (the weights
    the recompute would otherwise tune on the small demo catalogue)."""
    import time

    store.model_tuning_put(
        {
            "weights": {
                "many": {"ease": 1.0, "als": 0.5},
                "few": {"corated": 1.0},
                "cold": {"content": 1.0, "pop": 0.5},
            },
            "few_floor": 0,
            "tuned_at": time.time(),
        }
    )


def test_a_new_users_cooccurrence_suggestions_say_who_loved_them(
    few_on_cooccurrence, with_new_item, client
):
    """A user with one rating (the few segment, ranked by the loved co-occurrence) reads
    "Loved by people who rated X" under such a suggestion, X being the item they rated,
    on the home page's panel and in me/recommendations/; only where at least
    REASON_MIN_PEOPLE of X's raters loved it (no reason may reveal one person's rating)."""
    _, newcomer, _, loved = with_new_item
    reason = f"Loved by people who rated {loved.title}"
    client.force_login(newcomer)
    api = client.get("/api/v1/me/recommendations/", {"limit": 10}).json()
    assert api["source"] == "personal"
    said = [e for e in api["results"] if e["reason"] == reason]
    assert said, [e["reason"] for e in api["results"]]
    for entry in said:
        item = Item.objects.get(pk=entry["item"]["id"])
        assert _loved_by_raters_of(loved, item) >= reasons.min_people()
    page = client.get("/").content.decode()
    panel = page[page.index('id="panel-people-like-you"') :]
    panel = panel[: panel.index("</section>")]
    assert reason in panel and Item.objects.get(pk=said[0]["item"]["id"]).title in panel


def test_the_loved_reason_needs_enough_people_and_names_the_strongest_rated_item(settings):
    """``explain_top`` (and ``explain``) give REASON_LOVED to a rated-by-others item only for
    a user whose weights use the co-occurrence, only where the stored sum from one of
    their items proves REASON_MIN_PEOPLE lovers (> 2 per missing person), naming the item
    with the largest sum first."""
    from recommendations.tests.test_ready_batches import _parts

    matrix, parts = _parts(1)
    parts.config["weights"]["few"] = {"corated": 1.0}
    corated = parts.corated.toarray()
    for people in (2, 3, 5):
        settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "REASON_MIN_PEOPLE": people}
        seen = 0
        for u in range(matrix.n_users):
            row = matrix.csr[u].copy()
            row.data[4:] = 0.0  # their first four: the few segment
            row.eliminate_zeros()
            scored = parts.score(matrix.item_ids[row.indices], row.data)
            top = np.argsort(-scored.scores, kind="stable")[:10]
            because, codes = model_scoring.explain_top(scored, top, 3)
            groups, one_by_one = scored.explain(top, 3)
            assert codes.tolist() == one_by_one.tolist()
            for t, j in enumerate(top.tolist()):
                sums = corated[row.indices, j]
                enough = parts.warm[j] and (sums > 2 * (people - 1)).any()
                assert (codes[t] == store.REASON_LOVED) == enough
                if enough:
                    seen += 1
                    assert because[t][0] == row.indices[np.argmax(sums)]
                    assert groups[t][0] == because[t][0]
        assert seen or people == 5
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "REASON_MIN_PEOPLE": 2}
    parts.config["weights"]["few"] = {"pop": 1.0}  # a few segment without it: no such reason
    row = matrix.csr[0]
    scored = parts.score(matrix.item_ids[row.indices[:4]], row.data[:4])
    top = np.argsort(-scored.scores, kind="stable")[:10]
    assert store.REASON_LOVED not in model_scoring.explain_top(scored, top, 3)[1].tolist()


def test_the_snapshots_rating_times_follow_its_csr_order():
    """build.snapshot_arrays' ``times`` are aligned with the CSR data whatever the order
    the database gave the ratings in."""
    rng = np.random.default_rng(4)
    u = rng.integers(1, 30, 200)
    i = rng.integers(1, 50, 200)
    pairs = rng.permutation(np.unique(np.stack([u, i], axis=1), axis=0))
    t = rng.integers(1_500_000_000, 1_800_000_000, len(pairs)).astype(np.uint32)
    ratings = {"user": pairs[:, 0], "item": pairs[:, 1], "score": np.ones(len(pairs)), "time": t}
    arrays = build.snapshot_arrays(ratings, {})
    want = RatingMatrix.from_arrays(pairs[:, 0], pairs[:, 1], t.astype(float)).csr.data
    np.testing.assert_array_equal(arrays["times"], want)
    assert arrays["times"].dtype == np.uint32  # 4 bytes a rating
    assert "times" not in build.snapshot_arrays(
        {k: ratings[k] for k in ("user", "item", "score")}, {}
    )


def test_the_snapshot_carries_each_ratings_second_whenever_the_model_is_fitted(
    settings, demo_catalogue
):
    """The model stage tunes the few segment on first ratings, so the snapshot has rating
    times with the model on (trend part or not) and none without it."""
    from catalog.models import Rating

    no_trend = {**PRODUCT_BLEND, "trend_tau": 0.0}
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "MODEL_BLEND": no_trend}
    got = build.snapshot_ratings()
    assert got["time"].dtype == np.uint32
    rows = Rating.objects.order_by().values_list("user_id", "item_id", "updated")
    want = {(u, i): int(when.timestamp()) for u, i, when in rows}
    assert len(want) == got["time"].size > 0
    assert {
        (int(u), int(i)): int(t)
        for u, i, t in zip(got["user"], got["item"], got["time"], strict=True)
    } == want
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "MODEL": False}
    assert "time" not in build.snapshot_ratings()


def test_the_stored_trend_is_the_blends_as_of_the_last_day_and_scores_like_it(settings):
    """With rating times in the snapshot and weights using the trend part, the parts keep
    Trend's vector as of the snapshot's last day, and a few-segment user scores as
    Blend.score scores a user it does not know (as of that day)."""
    settings.RECOMMENDATIONS = {
        **settings.RECOMMENDATIONS,
        "MODEL_BLEND": {
            **PRODUCT_BLEND,
            **TREND,
            "ease_keep": 0,
            "als_iterations": 5,
            "few_floor": 0,
        },
    }
    matrix, info, arrays = _small()
    times = np.random.default_rng(1).uniform(0, 90 * 86400.0, matrix.nnz)
    w = {
        "many": {"ease": 1.0, "als": 0.5},
        "few": {"corated": 1.0, "trend": 1.0},
        "cold": {"content": 1.0},
    }
    fitted = model_scoring.fit_parts(
        arrays | {"times": times}, info=info, active_ids=matrix.item_ids, weights=w
    )
    blend = Blend(**settings.RECOMMENDATIONS["MODEL_BLEND"])
    blend.fit(matrix, items=info, weights=w, timestamps=times)
    np.testing.assert_allclose(fitted["trend"], blend.parts_.trend.reference_, rtol=1e-6)
    assert "trend" not in model_scoring.fit_parts(
        arrays, info=info, active_ids=matrix.item_ids, weights=w
    )
    parts = model_scoring.ModelParts(fitted)
    row = matrix.csr[3].copy()
    row.data[3:] = 0.0
    row.eliminate_zeros()
    got = parts.score(matrix.item_ids[row.indices], row.data).scores
    np.testing.assert_allclose(got, blend.score(row)[0], rtol=0, atol=2e-4)
