from django.urls import path

from recommendations.api import views

urlpatterns = [
    path("me/recommendations/", views.MyRecommendationsView.as_view(), name="my-recommendations"),
    path("me/similar-users/", views.MySimilarUsersView.as_view(), name="my-similar-users"),
    path("items/<int:item_id>/similar/", views.SimilarItemsView.as_view(), name="item-similar"),
    path(
        "items/<int:item_id>/predicted-rating/",
        views.PredictedRatingView.as_view(),
        name="item-predicted-rating",
    ),
    path("staff/recompute/", views.RecomputeView.as_view(), name="staff-recompute"),
]
