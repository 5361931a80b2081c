from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from catalog import selectors, services
from catalog.forms import ItemFilterForm, RatingForm, SignUpForm
from catalog.models import Item

PAGE_SIZE = 24


def home(request):
    genre = request.GET.get("genre", "")
    context = {
        "genres": selectors.genre_list(),
        "genre": genre,
        "top_rated": selectors.item_top_rated(genre=genre, limit=12),
        "popular": selectors.item_most_popular(genre=genre, limit=12),
    }
    return render(request, "catalog/home.html", context)


def item_list(request):
    form = ItemFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    items = selectors.item_list(
        search=filters.get("q", ""),
        genre=filters.get("genre", ""),
        ordering=filters.get("sort") or "-count",
    )
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    my_scores = selectors.user_scores_for_items(
        user=request.user, item_ids=[item.pk for item in page]
    )
    for item in page:
        item.my_score = my_scores.get(item.pk)
    context = {
        "form": form,
        "page": page,
        "genres": selectors.genre_list(),
        "active_genre": filters.get("genre", ""),
        "query": query.urlencode(),
    }
    return render(request, "catalog/item_list.html", context)


def item_detail(request, pk):
    item = get_object_or_404(Item.objects.prefetch_related("genres"), pk=pk, is_active=True)
    my_rating = selectors.user_rating_for_item(user=request.user, item=item)
    form = RatingForm(initial={"score": str(my_rating.score) if my_rating else None})
    context = {"item": item, "my_rating": my_rating, "form": form}
    return render(request, "catalog/item_detail.html", context)


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
        my_rating = selectors.user_rating_for_item(user=request.user, item=item)
        context = {"item": item, "my_rating": my_rating, "form": form}
        return render(request, "catalog/item_detail.html", context, status=400)
    messages.success(request, f"You rated {item} {form.cleaned_data['score']:g}.")
    return redirect(item)


@login_required
@require_POST
def rating_remove(request, pk):
    item = get_object_or_404(Item, pk=pk)
    if services.rating_delete(user=request.user, item=item):
        messages.success(request, f"Your rating of {item} was removed.")
    return redirect(item)


def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.username}! Rate a few items to get started.")
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})
