r"""Everything under /api/: version 1 of the JSON API, its OpenAPI schema and docs.

Unknown paths anywhere under /api/ answer with the API's JSON 404, not the site's HTML
page; ``[\s\S]`` because a bare ``.`` stops at a newline (``/api/v1/items/1%0A/``).
"""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from recsite.api import errors, health

v1 = [
    path("health/", health.HealthView.as_view(), name="health"),
    path("", include("catalog.api.urls")),
    path("", include("recommendations.api.urls")),
    re_path(r"^[\s\S]*$", errors.not_found),
]

urlpatterns = [
    path("v1/", include((v1, "api"), namespace="api")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    re_path(r"^[\s\S]*$", errors.not_found),
]
