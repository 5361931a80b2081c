from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from catalog import views as catalog_views
from catalog.forms import LoginForm
from recsite.views import favicon

admin.site.site_header = "Recsite administration"
admin.site.site_title = "Recsite admin"
admin.site.index_title = "Catalogue, ratings and recommendations"

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
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("recsite.api.urls")),
    # Browsers ask for /favicon.ico whatever the page links: send them to the SVG.
    path("favicon.ico", favicon, name="favicon"),
]
