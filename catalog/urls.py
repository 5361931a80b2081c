from django.urls import path

from catalog import views

app_name = "catalog"

urlpatterns = [
    path("", views.item_list, name="item_list"),
    path("mine/", views.my_ratings, name="my_ratings"),
    path("<int:pk>/", views.item_detail, name="item_detail"),
    path("<int:pk>/poster.svg", views.item_poster, name="item_poster"),
    path("<int:pk>/rate/", views.rating_submit, name="rating_submit"),
    path("<int:pk>/rating/delete/", views.rating_remove, name="rating_remove"),
    path("<int:pk>/hide/", views.item_hide, name="item_hide"),
    path("<int:pk>/unhide/", views.item_unhide, name="item_unhide"),
]
