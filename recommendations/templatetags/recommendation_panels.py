"""Recommendation panels any template can embed, and the contexts their fragments share.

``{% people_like_you user %}``, ``{% because_you_rated user %}`` and ``{% also_liked item %}``
render small includable fragments from ``templates/recommendations/``. Each fragment
carries a ``data-panel-url`` (``recommendations.views``) that the rating script fetches
again after a rating, so a panel refreshes without a page reload.

The panels only call ``recommendations.reads``, which read the published model from
Redis plus the user's live ratings: nothing here computes a similarity.
"""

from typing import NamedTuple
from urllib.parse import urlencode

from django import template
from django.urls import reverse

from recommendations import reads, reasons
from recommendations.panel_cards import CardRenderer

register = template.Library()

PANEL_SIZE = 8
BECAUSE_ROWS = 3
BECAUSE_ROW_SIZE = 6


class PanelCard(NamedTuple):
    item: object  # an ItemCard or Item
    reason: str


def _cards(similar_items) -> list[PanelCard]:
    return [PanelCard(s.item, reasons.similar_item_reason(s)) for s in similar_items]


def _panel_url(name: str, page_path: str, *args) -> str:
    url = reverse(f"recommendations:{name}", args=args)
    return f"{url}?{urlencode({'next': page_path})}" if page_path else url


def people_like_you_context(*, user, page_path: str = "", limit: int = PANEL_SIZE) -> dict:
    """User-based suggestions, or (source "popular") a note saying what to do first, or
    (``pending``) that they are on their way: the page then checks again by itself."""
    if not getattr(user, "is_authenticated", False):  # "" when a template has no user
        return {"show": False}
    recs = reads.people_like_you(user=user, limit=limit, fallback=False)
    return {
        "show": True,
        "recs": recs,
        "personal": recs.source == reads.PERSONAL,
        "content": recs.source == reads.CONTENT,
        "pending": recs.pending,
        "page_path": page_path,
        "panel_url": _panel_url("panel_people_like_you", page_path),
    }


def because_you_rated_context(*, user, page_path: str = "") -> dict:
    """Item-based rows for a few of the user's recent high ratings (none without a model)."""
    if not getattr(user, "is_authenticated", False):  # "" when a template has no user
        return {"show": False}
    rows = reads.because_you_rated(user=user, rows=BECAUSE_ROWS, limit=BECAUSE_ROW_SIZE)
    return {
        "show": True,
        "rows": [(rated, _cards(similar)) for rated, similar in rows],
        "page_path": page_path,
        "panel_url": _panel_url("panel_because_you_rated", page_path),
    }


def also_liked_context(*, item, user, page_path: str = "", limit: int = PANEL_SIZE) -> dict:
    """Items people who liked ``item`` also liked, leaving out what ``user`` rated or hid."""
    if not getattr(user, "is_authenticated", False):
        user = None
    similar = reads.similar_items(item=item, limit=limit, user=user)
    personal = any(s.source == reads.PERSONAL for s in similar)
    content = any(s.source == reads.CONTENT for s in similar)
    return {
        "show": True,
        "item": item,
        "cards": _cards(similar),
        "personal": personal,
        "content": content,
        "source": reads.PERSONAL if personal else reads.CONTENT if content else reads.POPULAR,
        "page_path": page_path,
        "panel_url": _panel_url("panel_also_liked", page_path, item.pk),
    }


def _common(context) -> dict:
    request = context.get("request")
    return {
        "user": context.get("user"),
        "csrf_token": context.get("csrf_token"),
        "request": request,
    }


def _page_path(context) -> str:
    if "page_path" in context:
        return context["page_path"]
    request = context.get("request")
    return request.get_full_path() if request is not None else ""


@register.simple_tag(takes_context=True)
def suggestion_cards(context, cards):
    """``{% suggestion_cards cards %}``: the cards of a panel (``Suggestion``s or
    ``PanelCard``s), the same HTML as ``_suggestion_card.html`` per card, made in Python
    (``recommendations.panel_cards``) for speed."""
    renderer = CardRenderer(
        user=context.get("user"),
        csrf_token=context.get("csrf_token"),
        page_path=context.get("page_path", ""),
    )
    return renderer.cards(cards)


@register.inclusion_tag("recommendations/_people_like_you.html", takes_context=True)
def people_like_you(context, user, limit=PANEL_SIZE):
    """``{% people_like_you user %}``: "People like you also liked", one reason per item."""
    return people_like_you_context(user=user, page_path=_page_path(context), limit=limit) | (
        _common(context)
    )


@register.inclusion_tag("recommendations/_because_you_rated.html", takes_context=True)
def because_you_rated(context, user):
    """``{% because_you_rated user %}``: "Because you rated <item>" rows."""
    return because_you_rated_context(user=user, page_path=_page_path(context)) | _common(context)


@register.inclusion_tag("recommendations/_also_liked.html", takes_context=True)
def also_liked(context, item, limit=PANEL_SIZE):
    """``{% also_liked item %}``: "People who rated this also rated" for the current user."""
    user = context.get("user")
    return also_liked_context(
        item=item, user=user, page_path=_page_path(context), limit=limit
    ) | _common(context)
