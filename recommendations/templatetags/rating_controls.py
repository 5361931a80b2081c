"""``{% rating_control item score %}``: the accessible star rating form, in any template.

Two variants, both plain forms that work with the keyboard, with screen readers and
without JavaScript (``static/js/rating.js`` makes them save in the background):

- the full control (an item's own page): a radio group, one radio per half star;
- ``compact=True`` (cards and list rows, dozens a page): one ``<select>`` of the ten
  scores beside a star meter drawn by CSS. Ten radios and labels a card made the
  signed-in home 118 KB of HTML; with the script on, the meter takes pointer clicks and
  the (visually hidden) select keeps the keyboard: arrows step through half stars, Enter
  saves.
"""

import functools
import itertools

from django import template
from django.utils.safestring import mark_safe

from catalog.models import ALLOWED_SCORES

register = template.Library()
# The same item can show twice on a page (top rated and most popular), so ids get a
# running number to keep every label pointing at its own radio.
_ids = itertools.count(1)


def _steps(score):
    for step in ALLOWED_SCORES:
        yield {
            "value": str(step),
            "key": f"{step:g}".replace(".", "-"),
            "short": f"{step:g}",
            "label": f"{step:g} star{'s' if step != 1 else ''}",
            "side": "left" if step % 1 else "right",
            "checked": score == step,
        }


@functools.cache
def _compact_options(score) -> str:
    """The compact control's ten ``<option>``s, made once per score: a panel of cards ran
    the template's loop over them for every card (a third of its rendering).
    ``</option>`` is optional in HTML: left out, 100 bytes less a card."""
    return mark_safe(
        "".join(
            f"<option{' selected' if step['checked'] else ''}>{step['short']}"
            for step in _steps(score)
        )
    )


@register.inclusion_tag("catalog/_rating_control.html", takes_context=True)
def rating_control(context, item, score=None, compact=False, next_url=""):
    """Stars for ``item`` with ``score`` (the user's current one, or None) checked.

    ``compact`` makes the light variant for cards; ``next_url`` is where the plain form
    returns to (default: the item's page).
    """
    score = None if score in (None, "") else float(score)  # "" for a missing rating
    return {
        "item": item,
        "score": score,
        # Half stars filled on the meter: the CSS classes s0 to s10.
        "fill": round(score * 2) if score else 0,
        "steps": () if compact else list(_steps(score)),
        "options": _compact_options(score) if compact else "",
        "compact": compact,
        "next_url": next_url,
        "csrf_token": context.get("csrf_token"),
        "prefix": f"rate-{item.pk}-{next(_ids)}",
    }
