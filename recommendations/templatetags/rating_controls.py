"""``{% rating_control item score %}``: the accessible star rating form, in any template.

The control is a radio group (one radio per half star) inside a plain form, so it works
with the keyboard, with screen readers and without JavaScript; ``static/js/rating.js``
makes it submit in the background.
"""

import itertools

from django import template

from catalog.models import ALLOWED_SCORES

register = template.Library()
# The same item can show twice on a page (top rated and most popular), so ids get a
# running number to keep every label pointing at its own radio.
_ids = itertools.count(1)


def _steps(score):
    score = None if score in (None, "") else float(score)
    for step in ALLOWED_SCORES:
        yield {
            "value": str(step),
            "key": f"{step:g}".replace(".", "-"),
            "label": f"{step:g} star{'s' if step != 1 else ''}",
            "side": "left" if step % 1 else "right",
            "checked": score == step,
        }


@register.inclusion_tag("catalog/_rating_control.html", takes_context=True)
def rating_control(context, item, score=None, compact=False, next_url=""):
    """Stars for ``item`` with ``score`` (the user's current one, or None) checked.

    ``compact`` makes the small variant for cards; ``next_url`` is where the plain form
    returns to (default: the item's page).
    """
    if score == "":  # a missing rating's score, as the template engine passes it
        score = None
    return {
        "item": item,
        "score": score,
        "steps": list(_steps(score)),
        "compact": compact,
        "next_url": next_url,
        "csrf_token": context.get("csrf_token"),
        "prefix": f"rate-{item.pk}-{next(_ids)}",
    }
