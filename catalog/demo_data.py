"""A deterministic synthetic catalogue for demos and first runs (no download needed).

Users belong to taste groups that favour a few genres; items have a genre, a quality
and a Zipf-like popularity. Who rates what follows popularity times genre affinity, and
scores follow quality plus the affinity, so "people like you" is visibly meaningful.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from catalog.models import ALLOWED_SCORES

GENRES = (
    "Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Horror", "Romance", "Sci-Fi", "Thriller",
)  # fmt: skip

# Title words per genre: "The <adjective> <noun>" and friends read like real titles.
_WORDS = {
    "Action": (
        ["Iron", "Last", "Burning", "Rogue", "Steel", "Final"],
        ["Strike", "Protocol", "Run", "Vengeance", "Fist", "Line"],
    ),
    "Adventure": (
        ["Lost", "Hidden", "Golden", "Endless", "Forgotten", "Wild"],
        ["Expedition", "Island", "Map", "Voyage", "Temple", "River"],
    ),
    "Animation": (
        ["Little", "Brave", "Magic", "Tiny", "Happy", "Sleepy"],
        ["Fox", "Robot", "Dragon", "Balloon", "Kingdom", "Friends"],
    ),
    "Comedy": (
        ["Crazy", "Awkward", "Lucky", "Big", "Perfect", "Terrible"],
        ["Wedding", "Weekend", "Roommates", "Vacation", "Boss", "Neighbours"],
    ),
    "Crime": (
        ["Dirty", "Silent", "Cold", "Crooked", "Midnight", "Borrowed"],
        ["Money", "Heist", "Alibi", "Witness", "Syndicate", "Badge"],
    ),
    "Documentary": (
        ["Deep", "Secret", "Hidden", "Living", "Frozen", "Human"],
        ["Oceans", "Planet", "Cities", "Machines", "Voices", "Forests"],
    ),
    "Drama": (
        ["Quiet", "Broken", "Distant", "Gentle", "Long", "Fading"],
        ["Summer", "Letters", "Promise", "Harbour", "Years", "Garden"],
    ),
    "Fantasy": (
        ["Enchanted", "Shadow", "Crystal", "Ancient", "Elven", "Cursed"],
        ["Crown", "Sword", "Realm", "Prophecy", "Forest", "Throne"],
    ),
    "Horror": (
        ["Hollow", "Bleeding", "Haunted", "Pale", "Rotten", "Whispering"],
        ["House", "Night", "Doll", "Cellar", "Woods", "Ritual"],
    ),
    "Romance": (
        ["Sweet", "Second", "Endless", "Paris", "Autumn", "Stolen"],
        ["Kiss", "Chance", "Hearts", "Love", "Affair", "Moments"],
    ),
    "Sci-Fi": (
        ["Dark", "Quantum", "Red", "Silent", "Distant", "Artificial"],
        ["Orbit", "Signal", "Frontier", "Colony", "Horizon", "Android"],
    ),
    "Thriller": (
        ["Blind", "Double", "Deadly", "Twisted", "Perfect", "Hidden"],
        ["Game", "Target", "Agenda", "Conspiracy", "Pursuit", "Motive"],
    ),
}

# Taste groups: the genres each group loves (others are liked less and rated lower).
_TASTES = (
    ("Action", "Sci-Fi", "Thriller"),
    ("Drama", "Romance"),
    ("Comedy", "Animation", "Romance"),
    ("Horror", "Thriller", "Crime"),
    ("Fantasy", "Adventure", "Animation"),
    ("Documentary", "Drama", "Crime"),
    ("Sci-Fi", "Fantasy", "Adventure"),
    ("Crime", "Thriller", "Drama"),
)


@dataclass(frozen=True)
class DemoItem:
    title: str
    year: int
    genres: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class DemoCatalogue:
    items: list[DemoItem]
    n_users: int
    user_taste: np.ndarray  # (n_users,) index into TASTES
    # Ratings as parallel arrays: user number, item number, score, time.
    rating_user: np.ndarray
    rating_item: np.ndarray
    rating_score: np.ndarray
    rating_time: list[datetime]


TASTES = _TASTES


def _title(rng: np.random.Generator, genre: str, used: set[str]) -> str:
    adjectives, nouns = _WORDS[genre]
    patterns = ("The {a} {n}", "{a} {n}", "{n} of the {a} {n2}", "A {a} {n}", "{n}: {a} {n2}")
    while True:
        pattern = patterns[rng.integers(len(patterns))]
        title = pattern.format(
            a=adjectives[rng.integers(len(adjectives))],
            n=nouns[rng.integers(len(nouns))],
            n2=nouns[rng.integers(len(nouns))],
        )
        if title in used:
            title = f"{title} {('II', 'III', 'Returns', 'Reloaded', 'Rising')[rng.integers(5)]}"
        if title not in used:
            used.add(title)
            return title


def build(*, n_items: int = 2000, n_users: int = 600, seed: int = 7) -> DemoCatalogue:
    """Make the catalogue; the same arguments always give the same catalogue."""
    rng = np.random.default_rng(seed)
    n_genres = len(GENRES)
    primary = rng.integers(n_genres, size=n_items)
    used: set[str] = set()
    items = []
    for index in range(n_items):
        genre = GENRES[primary[index]]
        extra = {GENRES[g] for g in rng.choice(n_genres, size=rng.integers(0, 3), replace=False)}
        genres = (genre, *sorted(extra - {genre}))
        title = _title(rng, genre, used)
        year = int(rng.integers(1960, 2025))
        description = f"A {year} {genre.lower()} film" + (
            f" with touches of {', '.join(g.lower() for g in genres[1:])}." if genres[1:] else "."
        )
        items.append(DemoItem(title, year, genres, description))

    # Zipf-like popularity: a few items are seen by many, most by few.
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    popularity = popularity[rng.permutation(n_items)]
    quality = rng.normal(0.0, 0.45, size=n_items)
    genre_member = np.zeros((n_items, n_genres))
    for index, item in enumerate(items):
        for genre in item.genres:
            genre_member[index, GENRES.index(genre)] = 1.0

    user_taste = rng.integers(len(TASTES), size=n_users)
    users, rated, scores = [], [], []
    for user in range(n_users):
        loved = np.zeros(n_genres)
        for genre in TASTES[user_taste[user]]:
            loved[GENRES.index(genre)] = 1.0
        affinity = (genre_member @ loved) / np.maximum(genre_member.sum(axis=1), 1)
        weight = popularity * (0.08 + affinity * 3.0)
        weight /= weight.sum()
        # Long-tailed activity: at least 15 ratings, a few people rate hundreds.
        count = min(15 + int(rng.lognormal(3.2, 0.9)), n_items // 3)
        chosen = rng.choice(n_items, size=count, replace=False, p=weight)
        bias = rng.normal(0.0, 0.3)
        raw = (
            3.0 + bias + quality[chosen] + 1.6 * affinity[chosen] - 0.6 + rng.normal(0, 0.5, count)
        )
        users.append(np.full(count, user))
        rated.append(chosen)
        scores.append(_to_allowed(raw))
    rating_user = np.concatenate(users)
    rating_item = np.concatenate(rated)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    offsets = rng.integers(0, 700 * 24 * 3600, size=len(rating_user))
    times = [start + timedelta(seconds=int(s)) for s in offsets]
    return DemoCatalogue(
        items, n_users, user_taste, rating_user, rating_item, np.concatenate(scores), times
    )


def _to_allowed(raw: np.ndarray) -> np.ndarray:
    """Round to the nearest half and clip into the allowed range."""
    return np.clip(np.round(raw * 2) / 2, ALLOWED_SCORES[0], ALLOWED_SCORES[-1])
