from django.urls import path

from recommendations import views

app_name = "recommendations"

urlpatterns = [
    path("panels/people-like-you/", views.panel_people_like_you, name="panel_people_like_you"),
    path(
        "panels/because-you-rated/", views.panel_because_you_rated, name="panel_because_you_rated"
    ),
    path("panels/also-liked/<int:pk>/", views.panel_also_liked, name="panel_also_liked"),
]
