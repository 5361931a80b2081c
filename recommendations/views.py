"""Panel fragments, fetched again by the rating script after a rating changes.

Each renders the same include as its template tag, so the refreshed panel is exactly what
a full page load would show.
"""

from django.shortcuts import get_object_or_404, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from catalog.models import Item
from recommendations.templatetags import recommendation_panels as panels


def _page_path(request) -> str:
    """The page the panel sits on: where its plain forms send the user back to."""
    target = request.GET.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return ""


@never_cache
@require_GET
def panel_people_like_you(request):
    context = panels.people_like_you_context(user=request.user, page_path=_page_path(request))
    return render(request, "recommendations/_people_like_you.html", context)


@never_cache
@require_GET
def panel_because_you_rated(request):
    context = panels.because_you_rated_context(user=request.user, page_path=_page_path(request))
    return render(request, "recommendations/_because_you_rated.html", context)


@never_cache
@require_GET
def panel_also_liked(request, pk):
    item = get_object_or_404(Item.objects.prefetch_related("genres"), pk=pk, is_active=True)
    context = panels.also_liked_context(item=item, user=request.user, page_path=_page_path(request))
    return render(request, "recommendations/_also_liked.html", context)
