"""What a suggestion says about itself, and the rules that keep it honest and private.

Every sentence a person reads about why an item is suggested is built here, through
gettext, from numbers the ranking already has. Three rules:

- **Privacy.** An aggregate over other people ("4 people with your taste rated it 4.3 on
  average", "12 people rated both", "Rated 3.9 on average by 7 people") is shown only
  when it covers at least ``REASON_MIN_PEOPLE`` people (default 3). Below that the
  sentence falls back to the user's own items ("Because you rated X") or to words with
  no number in them. No page or API response puts user ids next to a per-item
  aggregate: with one person behind an average and their id beside it, anyone could
  read that person's rating.
- **"Liked" means 4 or more.** A sentence says "liked" or "rated highly" only of
  ratings of at least ``LIKED`` (4.0); the neighbours' average is quoted as a selling
  point only when it is at least that.
- **No negative evidence.** The ranking counts any neighbour's rating as evidence for an
  item, a low one too; items whose neighbours rated them below ``evidence_floor`` on
  average are not suggested at all (the engine's ``min_neighbour_mean``, applied in the
  same ``recommend`` call by the live path and the stored lists).
"""

from __future__ import annotations

import functools

import numpy as np
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import translation

from recommendations.conf import get as option


# The sentences' translations, remembered per language. Django looks a message up in each
# installed app's catalogue in turn: a list of ten suggestions spent ~0.6 ms of a 2 ms
# me/recommendations/ request in ngettext (profile of bench/api_inprocess.py at 1M). The
# names stay ``_`` and ``ngettext`` so makemessages still finds the messages.
@functools.lru_cache(maxsize=4096)
def _translated(language, message: str, plural: str | None, n: int) -> str:
    if plural is None:
        return translation.gettext(message)
    return translation.ngettext(message, plural, n)


# ``language``: the active language when the caller has it already. Asking Django costs
# ~5 us (a context-local read), as much as the rest of a sentence: a list of suggestions
# asks once (``reads._suggestions``).
def _(message: str, language: str | None = None) -> str:
    return _translated(language or translation.get_language(), message, None, 0)


def ngettext(singular: str, plural: str, n: int, language: str | None = None) -> str:
    return _translated(language or translation.get_language(), singular, plural, n)


@receiver(setting_changed)
def _forget_translations(*, setting, **kwargs) -> None:
    if setting in {"LANGUAGE_CODE", "LANGUAGES", "LOCALE_PATHS", "USE_I18N"}:
        _translated.cache_clear()


# A rating of this or more is "liked" (the "Because you rated" rows and the sentences).
LIKED = 4.0
# Below this (or the user's own mean, when that is lower) the neighbours' average is
# evidence against an item: 3 of 5 stars, "fine", on a 0.5 to 5 scale.
NEUTRAL = 3.0


def min_people() -> int:
    """How many people an aggregate must cover to be shown (``REASON_MIN_PEOPLE``)."""
    return option("REASON_MIN_PEOPLE")


def personal_threshold() -> int:
    """Ratings a user needs before suggestions are personal: onboarding, panels, API."""
    return option("MIN_RATINGS_FOR_PERSONAL")


def evidence_floor(scores) -> float:
    """The neighbours' mean rating below which an item is not suggested to this user.

    The lower of ``NEUTRAL`` and the user's own mean: for someone who rates harshly, a
    neighbour's 2.5 can still be good news; for everyone else, below 3 is not. Exact for
    scores in half steps, whatever their dtype or order, so the live path and the
    stored lists get the same floor.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if not scores.size:
        return NEUTRAL
    return min(NEUTRAL, float(scores.sum()) / scores.size)


def _average_is_a_reason(people: int, people_sum: float, least: int) -> bool:
    return people >= least and people_sum >= LIKED * people


def needs_items(people: int, people_sum: float, *, least: int | None = None) -> bool:
    """Whether ``personal_reason`` will name one of the user's items (so read them).
    ``least``: ``min_people()`` when the caller has read it already."""
    return not _average_is_a_reason(people, people_sum, min_people() if least is None else least)


def personal_reason(
    people: int,
    people_sum: float,
    because_title: str | None,
    *,
    language: str | None = None,
    least: int | None = None,
) -> str:
    """The line under a personal suggestion.

    ``people`` of the user's neighbours rated the item, ``people_sum`` is the sum of
    their ratings; ``because_title`` names the user's own item that contributed most
    (None when the item part did not contribute). ``language`` and ``least`` (the active
    language, ``min_people()``): when the caller, writing many lines, has read them.
    """
    least = min_people() if least is None else least
    if _average_is_a_reason(people, people_sum, least):
        return ngettext(
            "%(count)d person with your taste rated it %(mean).1f on average",
            "%(count)d people with your taste rated it %(mean).1f on average",
            people,
            language,
        ) % {"count": people, "mean": people_sum / people}
    if because_title:
        return _("Because you rated %(title)s", language) % {"title": because_title}
    if people >= least:
        return ngettext(
            "Rated by %(count)d person with your taste",
            "Rated by %(count)d people with your taste",
            people,
            language,
        ) % {"count": people}
    if people:
        return _("From people whose ratings look like yours", language)
    return _("Close to what you rate highly", language)


def new_item_reason(similar_title: str, *, language: str | None = None) -> str:
    """The line under an item nobody has rated yet that the content model (genres, year,
    title words) found closest to ``similar_title``, an item the user rated highly."""
    return _("New, similar to %(title)s", language) % {"title": similar_title}


def loved_reason(rated_title: str, *, language: str | None = None) -> str:
    """The line under an item that people who rated ``rated_title`` (an item the user
    rated) loved, 4 or 5 stars: the loved co-occurrence that ranks a new user's list.
    Shown only when at least ``REASON_MIN_PEOPLE`` such people loved it
    (``model_scoring.loved_links``), with no number in it."""
    return _("Loved by people who rated %(title)s", language) % {"title": rated_title}


def similar_reason(support: int) -> str:
    """The line under an item-based suggestion ("also rated", "Because you rated"):
    how many people rated both, when that is enough people to say; else nothing.

    The neighbour lists count people who *rated* both items, whatever they gave, so the
    sentence says "rated", never "liked".
    """
    if support >= min_people():
        return ngettext("%(count)d person rated both", "%(count)d people rated both", support) % {
            "count": support
        }
    return ""


def similar_item_reason(similar) -> str:
    """The line under one entry of an "also liked" list (``reads.SimilarItem``): the
    content match's own line, the people who rated both, or the popular line."""
    if similar.reason:
        return similar.reason
    if similar.source == "personal":
        return similar_reason(similar.support)
    return popular_reason(similar.item.rating_count, similar.item.rating_average)


def popular_reason(rating_count: int, rating_average: float) -> str:
    """The line under a popular (non-personal) suggestion."""
    if rating_count >= min_people():
        return ngettext(
            "Rated %(mean).1f on average by %(count)d person",
            "Rated %(mean).1f on average by %(count)d people",
            rating_count,
        ) % {"count": rating_count, "mean": rating_average}
    if rating_count:
        return _("Only a few ratings so far")
    return _("New in the catalogue")


# -- cold start: from the catalogue and the user's own choices, never other people ------------
def _shared_parts(genres, decade: int | None, title: bool) -> str:
    parts = list(genres[:2])
    if decade is not None:
        parts.append(_("%(decade)ds") % {"decade": decade})
    if title:
        parts.append(_("similar title"))
    return ", ".join(parts)


def content_reason(genres, decade: int | None, title: bool = False) -> str:
    """The line under an item matched by content: what it shares with the item shown
    (genres, at most two; the decade; title words), e.g. "Also Sci-Fi, 1990s"."""
    if genres or decade is not None or title:
        return _("Also %(what)s") % {"what": _shared_parts(genres, decade, title)}
    return _("Similar in genre, year and title")


def new_similar_reason(genres, decade: int | None, title: bool = False) -> str:
    """The line under an item nobody has rated yet, shown for what it shares."""
    if genres or decade is not None or title:
        what = _shared_parts(genres, decade, title)
        return _("New, not rated yet: also %(what)s") % {"what": what}
    return _("New, not rated yet: similar in genre, year and title")


def liked_content_reason(title: str, score: float) -> str:
    """A starter suggestion close in content to one of the user's own high ratings."""
    return _("Like %(title)s, which you rated %(score)s") % {"title": title, "score": f"{score:g}"}


def genre_popular_reason(genre: str, rating_count: int) -> str:
    """A starter suggestion from a genre the user picked: a public count, no one's score."""
    if rating_count >= min_people():
        return ngettext(
            "Popular in %(genre)s: rated by %(count)d person",
            "Popular in %(genre)s: rated by %(count)d people",
            rating_count,
        ) % {"genre": genre, "count": rating_count}
    return _("In %(genre)s, a genre you like") % {"genre": genre}


def shown_support(support: int) -> int | None:
    """``support`` (people who rated both items) for the API, or None below the minimum."""
    return support if support >= min_people() else None


# -- the notes a non-personal panel or list carries -----------------------------------------
def note_unavailable() -> str:
    return _("Personal recommendations are briefly unavailable; showing popular items.")


def note_preparing() -> str:
    return _("Your personal suggestions are being prepared; showing popular items meanwhile.")


def note_few_ratings(needed: int) -> str:
    return ngettext(
        "Rate at least %(count)d item to get personal suggestions.",
        "Rate at least %(count)d items to get personal suggestions.",
        needed,
    ) % {"count": needed}


def note_no_overlap() -> str:
    return _("Not enough overlap with other people yet; rate a few more items.")


def note_starter(needed: int) -> str:
    return ngettext(
        "From the genres you like and items like the ones you rated highly. Rate at least "
        "%(count)d item to get suggestions from people with your taste.",
        "From the genres you like and items like the ones you rated highly. Rate at least "
        "%(count)d items to get suggestions from people with your taste.",
        needed,
    ) % {"count": needed}
