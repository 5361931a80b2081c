from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from catalog import views as catalog_views
from catalog.forms import LoginForm

urlpatterns = [
    path("", catalog_views.home, name="home"),
    path("items/", include("catalog.urls")),
    path("recommendations/", include("recommendations.urls")),
    path("accounts/signup/", catalog_views.signup, name="signup"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=LoginForm),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("recsite.api.urls")),
]
