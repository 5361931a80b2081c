r"""Everything under /api/: version 1 of the JSON API, its OpenAPI schema and docs.

Unknown paths anywhere under /api/ answer with the API's JSON 404, not the site's HTML
page; ``[\s\S]`` because a bare ``.`` stops at a newline (``/api/v1/items/1%0A/``).
"""

from csp.decorators import csp_update
from django.urls import include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from recsite.api import errors, health

v1 = [
    path("health/", health.HealthView.as_view(), name="health"),
    # The hottest read first: Django tries patterns in order, and no path matches both
    # lists, so the order changes only the time me/recommendations/ spends resolving.
    path("", include("recommendations.api.urls")),
    path("", include("catalog.api.urls")),
    re_path(r"^[\s\S]*$", errors.not_found),
]

urlpatterns = [
    path("v1/", include((v1, "api"), namespace="api")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Under the site's Content-Security-Policy (no inline script): Swagger UI's start-up
    # script comes from a second request (the split view), ReDoc's page is ours without
    # the Google Fonts it links. Both inject <style> elements and use data: images; ReDoc
    # also runs a worker from a blob: URL. Everything loads from our static files.
    path(
        "docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
    path(
        "redoc/",
        csp_update({"style-src": ["'unsafe-inline'"], "worker-src": ["'self'", "blob:"]})(
            SpectacularRedocView.as_view(url_name="api-schema", template_name="api/redoc.html")
        ),
        name="api-redoc",
    ),
    re_path(r"^[\s\S]*$", errors.not_found),
]
