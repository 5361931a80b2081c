from django.urls import path

from catalog.api import views

urlpatterns = [
    path("items/", views.ItemListView.as_view(), name="items"),
    path("items/popular/", views.PopularItemsView.as_view(), name="items-popular"),
    path("items/top-rated/", views.TopRatedItemsView.as_view(), name="items-top-rated"),
    path("items/<int:item_id>/", views.ItemDetailView.as_view(), name="item"),
    path("me/ratings/", views.MyRatingListView.as_view(), name="my-ratings"),
    path("me/ratings/<int:item_id>/", views.MyRatingDetailView.as_view(), name="my-rating"),
    path("me/genres/", views.MyGenresView.as_view(), name="my-genres"),
    path("auth/register/", views.RegisterView.as_view(), name="register"),
    path("auth/token/", views.TokenView.as_view(), name="token"),
]
