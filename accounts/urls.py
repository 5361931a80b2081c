from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from accounts import views

# Names without a namespace: Django's password views reverse "password_change_done",
# "password_reset_done", "password_reset_confirm" and "password_reset_complete" as they are.
urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("profile/genres/", views.profile_genres, name="profile_genres"),
    path("profile/data.csv", views.data_export, {"fmt": "csv"}, name="data_export_csv"),
    path("profile/data.json", views.data_export, {"fmt": "json"}, name="data_export_json"),
    path("delete/", views.account_delete, name="account_delete"),
    path("signed-out/", views.signed_out, name="signed_out"),
    path(
        "logout/",
        auth_views.LogoutView.as_view(next_page=reverse_lazy("signed_out")),
        name="logout",
    ),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("password_reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password_reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
