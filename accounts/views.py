"""Account pages: profile, download my data, delete my account, the signed-out page.

Password change and reset are Django's own views (recsite/urls.py) with the site's
templates under templates/registration/.
"""

import csv
import io
import json

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts import selectors, services
from accounts.forms import AccountDeleteForm, GenrePicksForm
from recommendations.conf import get as recommendations_option

CSV_COLUMNS = ["kind", "item_id", "title", "year", "score", "date"]


@login_required
def profile(request, genre_form=None, status=200):
    context = {
        "profile": selectors.user_profile(user=request.user),
        "personal_after": recommendations_option("MIN_RATINGS_FOR_PERSONAL"),
        "genre_form": genre_form or GenrePicksForm(user=request.user),
    }
    return render(request, "accounts/profile.html", context, status=status)


@login_required
@require_http_methods(["POST"])
def profile_genres(request):
    """Save the genres the person likes (profile page, or the home page's first-minute
    strip, which sends ``next`` to come back to)."""
    form = GenrePicksForm(request.POST, user=request.user)
    if not form.is_valid():
        return profile(request, genre_form=form, status=400)
    form.save()
    names = [genre.name for genre in form.cleaned_data["genres"]]
    messages.success(
        request,
        f"Saved: you like {', '.join(names)}." if names else "Saved: no genres picked.",
    )
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "profile"
    return redirect(target)


def _attachment(body: str, content_type: str, username: str, extension: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    filename = f"recsite-{username}-{timezone.now():%Y-%m-%d}.{extension}"
    # Usernames are letters, digits and @.+-_ (Django's validator): safe in a filename.
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@never_cache
def data_export(request, fmt: str):
    """The signed-in person's ratings and "Not interested" items, as CSV or JSON."""
    rows = selectors.user_data_rows(user=request.user)
    username = request.user.get_username()
    if fmt == "json":
        body = {"username": username, "exported": timezone.now().isoformat(), **rows}
        return _attachment(
            json.dumps(body, indent=2, ensure_ascii=False),
            "application/json",
            username,
            "json",
        )
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for rating in rows["ratings"]:
        writer.writerow({"kind": "rating", **rating, "date": rating["updated"]})
    for hidden in rows["not_interested"]:
        writer.writerow({"kind": "not interested", **hidden, "date": hidden["hidden"]})
    for genre in rows["genres"]:
        writer.writerow({"kind": "genre you like", "title": genre["name"]})
    return _attachment(out.getvalue(), "text/csv; charset=utf-8", username, "csv")


@login_required
@require_http_methods(["GET", "POST"])
def account_delete(request):
    form = AccountDeleteForm(request.POST or None, user=request.user, request=request)
    if request.method == "POST" and form.is_valid():
        username = request.user.get_username()
        removed = services.account_delete(user=request.user)
        logout(request)
        messages.success(
            request,
            f"The account {username} and its {removed} rating{'s' if removed != 1 else ''} "
            "were deleted.",
        )
        return redirect("signed_out")
    status = 400 if request.method == "POST" else 200
    profile = selectors.user_profile(user=request.user)
    return render(
        request, "accounts/delete.html", {"form": form, "profile": profile}, status=status
    )


def signed_out(request):
    """Where logging out lands: says so, with a way back in."""
    return render(request, "registration/logged_out.html")
