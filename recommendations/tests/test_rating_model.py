"""The rating model in the product: a factorization machine fitted by the recompute,
stored with the version, serving the predicted rating from the user's live ratings (a
new rating moves it at once), predicting items nobody has rated from their genres, and
falling back to the neighbour lists when a version has no rating model."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from catalog import services as catalog_services
from catalog.models import Genre, Item, Rating
from recommendations import pipeline, rating_model, store
from recommendations.conf import get as option
from recommendations.engine.data import ItemInfo
from recommendations.engine.fm import BayesianFM
from recommendations.engine.matrix import RatingMatrix
from recommendations.item_info import catalogue_item_info

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(rec_redis, demo_catalogue):
    rating_model.parts_clear()
    run = pipeline.recompute_sync()
    assert run.status == run.Status.SUCCEEDED, run.error
    yield run.version
    rating_model.parts_clear()


def _api_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def _predicted(user, item):
    response = _api_for(user).get(f"/api/v1/items/{item.pk}/predicted-rating/")
    assert response.status_code == 200
    return response.json()


def test_the_stored_parts_predict_as_the_fitted_estimator(published):
    """The recompute's fm stage stores what the estimator fitted on the same snapshot
    and catalogue predicts: the same folded-in value for a user and every item."""
    arrays = store.snapshot_get(published)
    csr = sp.csr_matrix(
        (np.asarray(arrays["data"]), np.asarray(arrays["indices"]), np.asarray(arrays["indptr"])),
        shape=(arrays["user_ids"].size, arrays["item_ids"].size),
    )
    matrix = RatingMatrix(csr, np.asarray(arrays["user_ids"]), np.asarray(arrays["item_ids"]))
    fitted = BayesianFM(**option("RATING_FM"), clip=(0.5, 5.0)).fit(
        matrix, items=catalogue_item_info(active_only=False)
    )
    parts = rating_model.parts_for(published)
    assert parts is not None and store.rows_written(published)["fm"] == 1
    demo = get_user_model().objects.get(username="demo")
    u = matrix.user_index(demo.pk)
    row = matrix.csr[u]
    want = fitted.predict_folded(fitted.fold_in(row.indices, row.data), np.arange(matrix.n_items))
    got = [
        parts.predict(matrix.item_ids[row.indices], row.data, int(i)).value for i in matrix.item_ids
    ]
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_a_new_rating_moves_the_served_prediction_without_a_recompute(published):
    demo = get_user_model().objects.get(username="demo")
    mine = set(Rating.objects.filter(user=demo).values_list("item_id", flat=True))
    unrated = Item.objects.exclude(pk__in=mine).order_by("-rating_count")
    target, other = unrated[0], unrated[1]
    before = _predicted(demo, target)
    assert before["source"] == "factorization" and 0.5 <= before["score"] <= 5
    for entry in before["neighbours"]:  # the user's own items, with their own scores
        assert entry["item"]["id"] in mine and entry["similarity"] is None
        assert entry["contribution"] > 0
    catalog_services.rating_upsert(user=demo, item=other, score=0.5)
    after = _predicted(demo, target)
    assert store.live_model().version == published
    assert after["score"] != before["score"]

    # a user the model was fitted without: folded in from their live ratings alone
    newcomer = get_user_model().objects.create_user("newcomer-fm", password="x")
    empty = _predicted(newcomer, target)
    catalog_services.rating_upsert(user=newcomer, item=other, score=5)
    one = _predicted(newcomer, target)
    assert empty["source"] == one["source"] == "factorization"
    assert one["score"] != empty["score"]


def test_an_item_nobody_rated_is_predicted_from_its_genres(published):
    """Items added after the recompute: no ratings, no column in the model; the
    prediction comes from their genres and year, and differs between genres."""
    demo = get_user_model().objects.get(username="demo")
    predicted = {}
    for genre in Genre.objects.order_by("name")[:4]:
        item = Item.objects.create(title=f"Brand new {genre.name}", year=2001)
        item.genres.set([genre])
        body = _predicted(demo, item)
        assert body["source"] == "genres" and 0.5 <= body["score"] <= 5
        predicted[genre.name] = body["score"]
    assert len(set(predicted.values())) > 1, predicted


def test_without_a_rating_model_the_neighbours_predict(published, settings):
    """A version with no rating model (RATING_MODEL off) serves today's k-NN predictor."""
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "RATING_MODEL": False}
    rating_model.parts_clear()
    demo = get_user_model().objects.get(username="demo")
    mine = set(Rating.objects.filter(user=demo).values_list("item_id", flat=True))
    target = Item.objects.exclude(pk__in=mine).order_by("-rating_count").first()
    body = _predicted(demo, target)
    assert body["source"] in {"neighbours", "baseline"}
    for entry in body["neighbours"]:
        assert entry["contribution"] is None and entry["similarity"] is not None


def test_a_catalogue_without_genres_or_years_still_gets_a_rating_model(rec_redis, demo_catalogue):
    """The 1M benchmark's synthetic catalogue has no side information: the fm stage's
    side-feature arrays are empty and must still be stored (they once failed to be)."""
    Item.genres.through.objects.all().delete()
    Item.objects.update(year=None)
    rating_model.parts_clear()
    run = pipeline.recompute_sync()
    assert run.status == run.Status.SUCCEEDED, run.error
    demo = get_user_model().objects.get(username="demo")
    mine = set(Rating.objects.filter(user=demo).values_list("item_id", flat=True))
    target = Item.objects.exclude(pk__in=mine).order_by("-rating_count").first()
    body = _predicted(demo, target)
    assert body["source"] == "factorization" and 0.5 <= body["score"] <= 5
    rating_model.parts_clear()


def test_on_many_ratings_the_fm_chain_is_cut_to_the_sweep_budget(settings):
    """RATING_FM_SWEEP_RATINGS bounds sweeps x ratings (never below MIN_SWEEPS sweeps):
    the burn-in scales with the chain and no more samples are kept than before; within
    the budget (or with 0) the settings are used as they are."""
    from recommendations.engine.fm import PRODUCT_FM
    from recommendations.rating_model import MIN_SWEEPS, scaled_sweeps

    budget = 600_000_000
    assert scaled_sweeps(PRODUCT_FM, 1_000_000, budget) == PRODUCT_FM
    assert scaled_sweeps(PRODUCT_FM, 6_000_000, budget) == PRODUCT_FM
    assert scaled_sweeps(PRODUCT_FM, 10**9, 0) == PRODUCT_FM
    for n, want in ((10_000_000, (60, 12, 3)), (25_000_000, (24, 5, 1))):
        got = scaled_sweeps(PRODUCT_FM, n, budget)
        assert (got["n_iter"], got["burn_in"], got["keep_every"]) == want
        assert got["factors"] == PRODUCT_FM["factors"]
    for n in (7_000_000, 13_000_000, 40_000_000, 10**9):
        got = scaled_sweeps(PRODUCT_FM, n, budget)
        kept = len(range(got["burn_in"], got["n_iter"], got["keep_every"]))
        assert got["n_iter"] >= MIN_SWEEPS and 1 <= kept <= 20
        assert got["n_iter"] * n <= budget or got["n_iter"] == MIN_SWEEPS

    rng = np.random.default_rng(0)
    dense = (rng.random((60, 25)) < 0.3) * rng.integers(1, 6, (60, 25))
    csr = sp.csr_matrix(dense.astype(float))
    ids = np.arange(25) + 1
    arrays = {"indptr": csr.indptr, "indices": csr.indices, "data": csr.data,
              "user_ids": np.arange(60) + 1, "item_ids": ids}  # fmt: skip
    info = ItemInfo(item_ids=ids, titles=[""] * 25, years=np.full(25, 1990.0),
                    genres=[["Drama"]] * 25, tags=[[] for _ in ids])  # fmt: skip
    settings.RECOMMENDATIONS = {
        **settings.RECOMMENDATIONS,
        "RATING_FM": {**PRODUCT_FM, "factors": 2, "n_iter": 40, "burn_in": 8, "keep_every": 4},
        "RATING_FM_SWEEP_RATINGS": csr.nnz * 25,
    }
    fitted = rating_model.fit_parts(arrays, info=info)
    params = rating_model.RatingParts(fitted).config["params"]
    assert (params["n_iter"], params["burn_in"], params["keep_every"]) == (25, 5, 3)
    assert fitted["w0_samples"].size == len(range(5, 25, 3))


def test_the_next_recompute_continues_the_live_versions_chain(published, settings):
    """The first rating model's chain starts cold and runs RATING_FM's length; the next
    recompute's starts from the live version's stored chain state and runs RATING_FM_WARM's
    shorter chain; with RATING_FM_WARM empty it starts cold again."""
    first = rating_model.RatingParts(store.snapshot_get(published, part="fm")).config
    assert first["warm"] is False
    assert first["params"]["n_iter"] == option("RATING_FM")["n_iter"]
    run = pipeline.recompute_sync()
    assert run.status == run.Status.SUCCEEDED, run.error
    second = rating_model.RatingParts(store.snapshot_get(run.version, part="fm")).config
    assert second["warm"] is True
    assert second["params"]["n_iter"] == option("RATING_FM_WARM")["n_iter"]

    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "RATING_FM_WARM": {}}
    run = pipeline.recompute_sync()
    third = rating_model.RatingParts(store.snapshot_get(run.version, part="fm")).config
    assert third["warm"] is False
    rating_model.parts_clear()


def test_a_chain_with_other_features_or_too_few_ratings_does_not_start_the_next(settings):
    """warm_state: parts whose model had other features (or factors) than RATING_FM's,
    that hold no chain state, or whose chain saw under WARM_MIN_SHARE of today's ratings
    (a large import since) give None; matching ones (whatever the chain's length) give
    the chain arrays."""
    from recommendations.engine.fm import PRODUCT_FM

    rng = np.random.default_rng(0)
    dense = (rng.random((30, 12)) < 0.4) * rng.integers(1, 6, (30, 12))
    csr = sp.csr_matrix(dense.astype(float))
    arrays = {"indptr": csr.indptr, "indices": csr.indices, "data": csr.data,
              "user_ids": np.arange(30) + 1, "item_ids": np.arange(12) + 1}  # fmt: skip
    params = {**PRODUCT_FM, "n_iter": 6, "burn_in": 2, "keep_every": 1}
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "RATING_FM": params}
    parts = rating_model.fit_parts(arrays, info=None)
    n = csr.nnz
    state = rating_model.warm_state(parts, params, n)
    assert state is not None and {"chain_u_v", "chain_i_keys"} <= set(state[0])
    assert rating_model.warm_state(parts, {**params, "factors": 3}, n) is None
    assert rating_model.warm_state(parts, {**params, "item_raters": False}, n) is None
    assert rating_model.warm_state(parts, {**params, "n_iter": 50}, n) is not None
    share = rating_model.WARM_MIN_SHARE
    assert rating_model.warm_state(parts, params, int(n / share)) is not None
    assert rating_model.warm_state(parts, params, int(n / share) + 1) is None
    old = {k: v for k, v in parts.items() if not k.startswith("chain_")}
    config = rating_model.RatingParts(parts).config
    del config["chain"]
    old["config"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
    assert rating_model.warm_state(old, params, n) is None
