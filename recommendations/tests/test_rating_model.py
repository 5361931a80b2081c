"""The rating model in the product: a factorization machine fitted by the recompute,
stored with the version, serving the predicted rating from the user's live ratings (a
new rating moves it at once), predicting items nobody has rated from their genres, and
falling back to the neighbour lists when a version has no rating model."""

import numpy as np
import pytest
import scipy.sparse as sp
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from catalog import services as catalog_services
from catalog.models import Genre, Item, Rating
from recommendations import pipeline, rating_model, store
from recommendations.conf import get as option
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


def test_above_the_cap_the_fm_fits_a_sample_of_whole_users_with_the_at_scale_settings(
    settings,
):
    """Above RATING_FM_MAX_RATINGS the fm stage fits whole users' rows drawn at random
    (about the cap's worth) with RATING_FM_AT_SCALE over RATING_FM, over the items they
    rated; a user left out is folded in like any user, and an item left without ratings
    is predicted from its genres. At or below the cap it fits every rating as before."""
    from recommendations import model_scoring
    from recommendations.engine.data import ItemInfo

    rng = np.random.default_rng(0)
    n_users, n_items = 80, 30
    dense = (rng.random((n_users, n_items)) < 0.3) * rng.integers(1, 6, (n_users, n_items))
    user_ids, item_ids = np.arange(n_users) + 10, np.arange(n_items) * 2 + 1
    cap = int((dense > 0).sum()) // 3
    dense[:, -1] = 0  # the last item: one rater, left out of the sample
    for u in range(n_users):
        trial = dense.copy()
        trial[u, -1] = 4
        csr = sp.csr_matrix(trial.astype(float))
        picked = model_scoring.tuning_sample(RatingMatrix(csr, user_ids, item_ids), cap)
        if user_ids[u] not in set(picked.user_ids):
            break
    arrays = {"indptr": csr.indptr, "indices": csr.indices, "data": csr.data,
              "user_ids": user_ids, "item_ids": item_ids}  # fmt: skip
    info = ItemInfo(item_ids=item_ids, titles=[""] * n_items, years=np.full(n_items, 1990.0),
                    genres=[["Drama"] if k % 2 else ["Comedy"] for k in range(n_items)],
                    tags=[[] for _ in range(n_items)])  # fmt: skip
    small = {"factors": 2, "n_iter": 6, "burn_in": 2, "keep_every": 1}
    settings.RECOMMENDATIONS = {
        **settings.RECOMMENDATIONS,
        "RATING_FM": {**option("RATING_FM"), **small},
        "RATING_FM_MAX_RATINGS": cap,
        "RATING_FM_AT_SCALE": {"n_iter": 5},
    }
    fitted = rating_model.fit_parts(arrays, info=info)
    parts = rating_model.RatingParts(fitted)
    matrix = RatingMatrix(csr, user_ids, item_ids)
    sample = model_scoring.tuning_sample(matrix, cap)
    assert sample is not matrix and parts.config["fit_ratings"] == sample.nnz <= cap
    assert parts.config["snapshot_ratings"] == csr.nnz
    assert parts.config["params"]["n_iter"] == 5 and fitted["w0_samples"].size == 3
    rated = sample.item_ids[sample.item_counts > 0]
    assert parts.item_ids.tolist() == rated.tolist() and rated.size < n_items
    left_out = next(u for u in range(n_users) if user_ids[u] not in set(sample.user_ids))
    row = csr[left_out]
    unrated = int(np.setdiff1d(item_ids, rated)[0])
    for target in (int(rated[0]), unrated):
        got = parts.predict(item_ids[row.indices], row.data, target, genres=["Drama"])
        assert 0.5 <= got.value <= 5
        assert got.source == (rating_model.GENRES if target == unrated else "factorization")

    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "RATING_FM_MAX_RATINGS": csr.nnz}
    every = rating_model.RatingParts(rating_model.fit_parts(arrays, info=info))
    assert every.config["fit_ratings"] == csr.nnz and every.config["params"]["n_iter"] == 6
    assert every.item_ids.tolist() == item_ids.tolist()
