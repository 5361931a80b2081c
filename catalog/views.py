from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_cache_control
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from catalog import posters, selectors, services
from catalog.forms import MY_RATINGS_SORTS, ItemFilterForm, MyRatingsForm, RatingForm, SignUpForm
from catalog.models import Item

PAGE_SIZE = 24
MY_RATINGS_PAGE_SIZE = 50
ONBOARDING_ITEMS = 10


def onboarding_target() -> int:
    """Below this many ratings the home page asks the user to rate well-known items first.

    The one threshold for "personal" (RECOMMENDATIONS["MIN_RATINGS_FOR_PERSONAL"], env
    MIN_RATINGS_FOR_PERSONAL): the panels and the API serve popular items below it too.
    Read from the settings, as catalog never imports recommendations.
    """
    return settings.RECOMMENDATIONS["MIN_RATINGS_FOR_PERSONAL"]


def _wants_json(request) -> bool:
    """The rating script asks for JSON; a plain form post gets HTML and redirects."""
    return request.headers.get("Accept", "").startswith("application/json")


def _next_url(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _mark_my_scores(user, items) -> None:
    scores = selectors.user_scores_for_items(user=user, item_ids=[item.pk for item in items])
    for item in items:
        item.my_score = scores.get(item.pk)


def _without(items, hidden_ids, limit=12):
    return [item for item in items if item.pk not in hidden_ids][:limit]


def home(request):
    genre = request.GET.get("genre", "")
    # "Not interested" applies to every list a user sees, not only the personal panels.
    hidden = selectors.user_hidden_item_ids(user=request.user)
    top_rated = _without(selectors.item_top_rated(genre=genre, limit=12 + len(hidden)), hidden)
    popular = _without(selectors.item_most_popular(genre=genre, limit=12 + len(hidden)), hidden)
    context = {
        "genres": selectors.genre_list(),
        "genre": genre,
        "top_rated": top_rated,
        "popular": popular,
        "onboarding_target": onboarding_target(),
    }
    my_count = 0
    if request.user.is_authenticated:
        my_count = selectors.user_rating_list(user=request.user).count()
        context["my_rating_count"] = my_count
    known = []
    if my_count < context["onboarding_target"]:
        # Signed out too: the strip shows what rating a few well-known items leads to.
        known = _without(
            selectors.item_most_popular(limit=ONBOARDING_ITEMS + len(hidden)),
            hidden,
            limit=ONBOARDING_ITEMS,
        )
        context["onboarding_items"] = known
    if request.user.is_authenticated:
        _mark_my_scores(request.user, [*known, *top_rated, *popular])
    return render(request, "catalog/home.html", context)


def item_list(request):
    form = ItemFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    search = filters.get("q", "")
    plan = selectors.search_plan(search) if search.strip() else []
    items = selectors.item_list(
        search=search,
        genre=filters.get("genre", ""),
        ordering=filters.get("sort") or "relevance",
        plan=plan,
    )
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    _mark_my_scores(request.user, page)
    context = {
        "form": form,
        "page": page,
        "genres": selectors.genre_list(),
        "active_genre": filters.get("genre", ""),
        "active_sort": filters.get("sort") or "relevance",
        "query": query.urlencode(),
        "search_hint": _search_hint(plan),
    }
    return render(request, "catalog/item_list.html", context)


def _search_hint(plan) -> str:
    """A sentence naming the misspelt words of a search and what was searched instead."""
    parts = []
    for word, spellings in selectors.search_corrections(plan).items():
        if spellings:
            parts.append(f"“{word}” also matched {', '.join(spellings)}")
        else:
            parts.append(f"no title has a word like “{word}”")
    return "; ".join(parts).capitalize() + "." if parts else ""


def _item_context(request, item, form=None):
    my_rating = selectors.user_rating_for_item(user=request.user, item=item)
    if form is None:
        form = RatingForm(initial={"score": str(my_rating.score) if my_rating else None})
    hidden = item.pk in selectors.user_hidden_item_ids(user=request.user)
    return {"item": item, "my_rating": my_rating, "form": form, "is_hidden": hidden}


def item_detail(request, pk):
    item = get_object_or_404(Item.objects.prefetch_related("genres"), pk=pk, is_active=True)
    return render(request, "catalog/item_detail.html", _item_context(request, item))


# A poster URL carries its drawing's digest, so a matching request may be cached for good.
POSTER_CACHE_SECONDS = 365 * 24 * 3600


@require_safe
def item_poster(request, pk):
    """The item's poster, drawn on request (``catalog.posters``): an SVG of a few KB."""
    item = get_object_or_404(Item.objects.prefetch_related("genres"), pk=pk, is_active=True)
    names = [genre.name for genre in item.genres.all()]
    svg = posters.poster_svg(title=item.title, year=item.year, genres=names)
    response = HttpResponse(svg, content_type="image/svg+xml")
    if request.GET.get("v") == posters.digest(item.title, item.year, names):
        response["Cache-Control"] = f"public, max-age={POSTER_CACHE_SECONDS}, immutable"
    else:  # an old or missing digest: the picture may change, keep it briefly
        patch_cache_control(response, public=True, max_age=300)
    # Opened on its own, an SVG is a document: it may run nothing and load nothing.
    response["Content-Security-Policy"] = "default-src 'none'"
    return response


def _rating_payload(request, item_pk: int, score: float | None, message: str) -> dict:
    """What the rating script needs to update the page without a reload."""
    item = Item.objects.get(pk=item_pk)  # fresh counts, after the service's F() update
    return {
        "item": item.pk,
        "score": score,
        "average": item.rating_average,
        "count": item.rating_count,
        "my_rating_count": selectors.user_rating_list(user=request.user).count(),
        "message": message,
    }


@login_required
@require_POST
def rating_submit(request, pk):
    item = get_object_or_404(Item, pk=pk, is_active=True)
    form = RatingForm(request.POST)
    if form.is_valid():
        try:
            services.rating_upsert(user=request.user, item=item, score=form.cleaned_data["score"])
        except ValidationError as error:
            form.add_error("score", error)
    if not form.is_valid():
        if _wants_json(request):
            errors = " ".join(form.errors.get("score", ["Choose a score."]))
            return JsonResponse({"error": errors}, status=400)
        item = Item.objects.prefetch_related("genres").get(pk=item.pk)
        return render(
            request, "catalog/item_detail.html", _item_context(request, item, form), status=400
        )
    message = f"You rated {item} {form.cleaned_data['score']:g}."
    if _wants_json(request):
        return JsonResponse(_rating_payload(request, item.pk, form.cleaned_data["score"], message))
    messages.success(request, message)
    return redirect(_next_url(request, item.get_absolute_url()))


@login_required
@require_POST
def rating_remove(request, pk):
    item = get_object_or_404(Item, pk=pk)
    removed = services.rating_delete(user=request.user, item=item)
    message = f"Your rating of {item} was removed." if removed else f"You had not rated {item}."
    if _wants_json(request):
        return JsonResponse(_rating_payload(request, item.pk, None, message))
    if removed:
        messages.success(request, message)
    return redirect(_next_url(request, item.get_absolute_url()))


@login_required
@require_POST
def item_hide(request, pk):
    item = get_object_or_404(Item, pk=pk)
    rated = selectors.user_scores_for_items(user=request.user, item_ids=[item.pk]).get(item.pk)
    services.item_hide(user=request.user, item=item)  # also removes the rating
    message = f"{item} will not be suggested to you again."
    if rated is not None:
        message += f" Your rating ({rated:g}) was removed."
    if _wants_json(request):
        return JsonResponse({"item": item.pk, "hidden": True, "message": message})
    messages.success(request, f"{message} Undo it on the item's page or under My ratings.")
    return redirect(_next_url(request, item.get_absolute_url()))


@login_required
@require_POST
def item_unhide(request, pk):
    item = get_object_or_404(Item, pk=pk)
    services.item_unhide(user=request.user, item=item)
    message = f"{item} may be suggested to you again."
    if _wants_json(request):
        return JsonResponse({"item": item.pk, "hidden": False, "message": message})
    messages.success(request, message)
    return redirect(_next_url(request, item.get_absolute_url()))


@login_required
def my_ratings(request):
    form = MyRatingsForm(request.GET or None)
    sort = form.cleaned_data["sort"] if form.is_valid() else "-updated"
    ratings = selectors.user_rating_list(user=request.user, ordering=MY_RATINGS_SORTS[sort][1])
    page = Paginator(ratings, MY_RATINGS_PAGE_SIZE).get_page(request.GET.get("page"))
    hidden_ids = selectors.user_hidden_item_ids(user=request.user)
    # No selector lists hidden items yet; the ids above bound this to one more query.
    hidden = list(Item.objects.filter(pk__in=hidden_ids).order_by("title")) if hidden_ids else []
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "hidden_items": hidden, "query": query.urlencode()}
    return render(request, "catalog/my_ratings.html", context)


def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(
            request,
            f"Welcome, {user.username}! Rate {onboarding_target()} items you know to get "
            "personal suggestions.",
        )
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})
