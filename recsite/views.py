"""Site-wide views: the favicon and the 404/500 handlers."""

from django.http import HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
from django.views import defaults
from django.views.decorators.cache import cache_control

from recsite.api import errors


@cache_control(max_age=86400, public=True)
def favicon(request):
    # Resolved per request, not at import: the hashed name exists only after collectstatic.
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request, exception):
    """The site's 404 page; under /api/ the API's JSON 404 (no response there is HTML)."""
    if _is_api(request):
        return errors.not_found(request)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """The site's standalone 500 page; under /api/ the API's JSON error shape."""
    if _is_api(request):
        body = errors.error_body(
            status_code=500, code="server_error", message="The server could not answer."
        )
        return JsonResponse(body, status=500)
    return defaults.server_error(request)
