"""``{% genre_picks_form user next_url %}``: the genres-you-like checkboxes anywhere (the
home page's first-minute strip), posting to the profile's genre view and coming back."""

from django import template

from accounts.forms import GenrePicksForm

register = template.Library()


@register.inclusion_tag("accounts/_genre_picks_form.html", takes_context=True)
def genre_picks_form(context, user, next_url=""):
    if not getattr(user, "is_authenticated", False):
        return {"show": False}
    return {
        "show": True,
        "form": GenrePicksForm(user=user, auto_id="id_onboarding_%s"),
        "next_url": next_url,
        "csrf_token": context.get("csrf_token"),
    }
