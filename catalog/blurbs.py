"""Words about an item: the paragraph its page shows.

``listing`` is for real titles (MovieLens and other imports) that come without a
description: it says only what is known (title, year, genres), never an invented plot.
``catalog.demo_data`` writes the fictional plots of the demo catalogue itself.
"""

from __future__ import annotations

from collections.abc import Iterable

# How a genre reads inside a sentence ("a 1995 animated comedy"); adjectives come first.
_ADJECTIVES = {"Animation": "animated", "Children's": "family", "Film-Noir": "noir"}
_NOUNS = {
    "Action": "action", "Adventure": "adventure", "Comedy": "comedy", "Crime": "crime",
    "Documentary": "documentary", "Drama": "drama", "Fantasy": "fantasy", "Horror": "horror",
    "Musical": "musical", "Mystery": "mystery", "Romance": "romance",
    "Sci-Fi": "science-fiction", "Thriller": "thriller", "War": "war", "Western": "western",
}  # fmt: skip
# Genre words that do not stand alone as a noun: "an action film", but "a comedy".
_NEEDS_FILM = {"action", "adventure", "crime", "horror", "science-fiction", "war", "fantasy"}


def article(word: str) -> str:
    """ "a" or "an" before ``word`` as it is spoken (years included: "an 1895 short")."""
    spoken_vowel = word[:1].lower() in "aeiou" or word.startswith(("8", "11", "18"))
    return "an" if spoken_vowel and not word.startswith(("uni", "Uni", "use", "one")) else "a"


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def kind_of_film(year: int | None, genres: Iterable[str]) -> str:
    """e.g. "a 1995 animated family comedy", "a drama", "a film"."""
    names = sorted(genres)
    adjectives = [_ADJECTIVES[g] for g in names if g in _ADJECTIVES]
    nouns = [_NOUNS[g] for g in names if g in _NOUNS]
    if not nouns:
        head = "film"
    elif len(nouns) == 1:
        head = nouns[0] + (" film" if nouns[0] in _NEEDS_FILM else "")
    else:
        head = f"{_and(nouns)} film"
    words = " ".join([*([str(year)] if year else []), *adjectives, head])
    return f"{article(words)} {words}"


def listing(title: str, year: int | None, genres: Iterable[str]) -> str:
    """A short, true paragraph for an item that came without a description."""
    return (
        f"{title} is {kind_of_film(year, genres)}. Its average and the suggestions beside it "
        "come from the ratings people gave it here."
    )
