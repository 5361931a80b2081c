"""The suggestion cards of every panel, rendered in Python.

A panel shows up to 18 cards ("Because you rated": three rows of six). Through the
template (``templates/recommendations/_suggestion_card.html`` with its ``rating_control``
include) a card cost about 1 ms of CPU: a template context pushed per card and four URL
reversals (the item's page, its poster, the rating and the "Not interested" forms), a
third of it the reversals. Here the URLs are reversed once per panel and each card is one
string of escaped values: the same bytes as the template's output, which stays the
reference (``recommendations/tests/test_panel_cards.py`` compares the two, hostile titles
included).
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from catalog import posters
from recommendations.templatetags.rating_controls import _compact_options

# A primary key no real item has: reversed once, split around it, the URL of any item is
# prefix + pk + suffix, with the request's script prefix and URLconf like reverse()'s.
_SENTINEL = 987654321012


def _url_parts(name: str) -> tuple[str, str]:
    url = reverse(name, args=[_SENTINEL])
    prefix, _, suffix = url.partition(str(_SENTINEL))
    return prefix, suffix


class CardRenderer:
    """Renders ``(item, reason)`` pairs as the panels' cards for one page.

    ``user`` decides whether the rating and "Not interested" forms appear; their plain
    (no JavaScript) forms return to ``page_path``. One renderer per panel render: the
    URL parts are reversed here, once, for the current request's script prefix.
    """

    def __init__(self, *, user, csrf_token, page_path: str) -> None:
        self.signed_in = bool(getattr(user, "is_authenticated", False))
        # Read only where a form shows it, as the template does: reading the token marks
        # the response as needing the CSRF cookie.
        self.csrf = conditional_escape(csrf_token) if self.signed_in else ""
        self.page_path = conditional_escape(page_path)
        self.next_input = (
            f'<input type="hidden" name="next" value="{self.page_path}">' if page_path else ""
        )
        self.detail = _url_parts("catalog:item_detail")
        self.poster = _url_parts("catalog:item_poster")
        if self.signed_in:
            self.rate = _url_parts("catalog:rating_submit")
            self.hide = _url_parts("catalog:item_hide")
        self.options = _compact_options(None)

    def card(self, item, reason) -> str:
        pk = str(item.pk)
        title = conditional_escape(item.title)
        names = [genre.name for genre in item.card_genres()]
        version = posters.digest(item.title, item.year, names)
        parts = [
            f'<li class="card suggestion" data-card-item="{pk}">\n'
            f'  <img src="{self.poster[0]}{pk}{self.poster[1]}?v={version}" alt=""'
            ' loading="lazy">\n'
            f'  <a class="card-title" href="{self.detail[0]}{pk}{self.detail[1]}">{title}</a>\n'
            '  <div class="card-meta">\n    ',
            f"<span>{conditional_escape(item.year)}</span>" if item.year else "",
            "\n    ",
            *[f'<span class="tag">{conditional_escape(name)}</span>' for name in names],
            "\n  </div>\n  ",
            f'<p class="reason">{conditional_escape(reason)}</p>' if reason else "",
            "\n  ",
        ]
        if self.signed_in:
            parts.append(
                f"\n    "
                f'<form class="rating-control compact" method="post" '
                f'action="{self.rate[0]}{pk}{self.rate[1]}" data-rating-form data-item="{pk}">\n'
                f'<input type="hidden" name="csrfmiddlewaretoken" value="{self.csrf}">'
                f"{self.next_input}\n"
                f'<select name="score" class="star-select" aria-label="Stars for {title}">'
                f'<option value="">Rate…{self.options}</select><span class="star-meter" '
                'data-star-meter aria-hidden="true"><span class="star-fill s0"></span></span>\n'
                '<span class="rating-status" data-rating-status></span>\n'
                '<button type="submit" class="rating-save">Save<span class="visually-hidden">'
                f" rating for {title}</span></button>\n</form>\n\n"
                f'    <form method="post" action="{self.hide[0]}{pk}{self.hide[1]}" '
                f'class="hide-form" data-hide-form data-item="{pk}">\n'
                f'      <input type="hidden" name="csrfmiddlewaretoken" value="{self.csrf}">\n'
                f"      {self.next_input}\n"
                '      <button type="submit" class="link">Not interested'
                f'<span class="visually-hidden"> in {title}</span></button>\n'
                "    </form>\n  "
            )
        parts.append("\n</li>\n")
        return "".join(parts)

    def cards(self, cards) -> SafeString:
        """``cards``: objects with ``item`` and ``reason`` (``Suggestion``, ``PanelCard``)."""
        return mark_safe("".join(self.card(card.item, card.reason) for card in cards))
