"""Site-wide views: the favicon. (The 404 and 500 pages are Django's default handlers with
the site's templates; under /api/ recsite.security.ApiJsonErrorsMiddleware answers JSON.)"""

from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.views.decorators.cache import cache_control


@cache_control(max_age=86400, public=True)
def favicon(request):
    # Resolved per request, not at import: the hashed name exists only after collectstatic.
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))
