"""A deterministic synthetic catalogue for demos and first runs (no download needed).

Users belong to taste groups that favour a few genres; items have a genre, a quality
and a Zipf-like popularity. Who rates what follows popularity times genre affinity, and
scores follow quality plus the affinity, so "people like you" is visibly meaningful.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from catalog import blurbs
from catalog.models import ALLOWED_SCORES

GENRES = (
    "Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Horror", "Romance", "Sci-Fi", "Thriller",
)  # fmt: skip

# Title words per genre. Nouns are marked S (one countable thing: "a Fox"), P (plural:
# "Hearts") or M (a mass noun or a name: "Money"), so only S nouns take "a"/"an".
_WORDS = {
    "Action": (
        ["Iron", "Last", "Burning", "Rogue", "Steel", "Final"],
        ["Strike S", "Protocol S", "Run S", "Vengeance M", "Fist S", "Line S"],
    ),
    "Adventure": (
        ["Lost", "Hidden", "Golden", "Endless", "Forgotten", "Wild"],
        ["Expedition S", "Island S", "Map S", "Voyage S", "Temple S", "River S"],
    ),
    "Animation": (
        ["Little", "Brave", "Magic", "Tiny", "Happy", "Sleepy"],
        ["Fox S", "Robot S", "Dragon S", "Balloon S", "Kingdom S", "Friends P"],
    ),
    "Comedy": (
        ["Crazy", "Awkward", "Lucky", "Big", "Perfect", "Terrible"],
        ["Wedding S", "Weekend S", "Roommates P", "Vacation S", "Boss S", "Neighbours P"],
    ),
    "Crime": (
        ["Dirty", "Silent", "Cold", "Crooked", "Midnight", "Borrowed"],
        ["Money M", "Heist S", "Alibi S", "Witness S", "Syndicate S", "Badge S"],
    ),
    "Documentary": (
        ["Deep", "Secret", "Hidden", "Living", "Frozen", "Human"],
        ["Oceans P", "Planet S", "Cities P", "Machines P", "Voices P", "Forests P"],
    ),
    "Drama": (
        ["Quiet", "Broken", "Distant", "Gentle", "Long", "Fading"],
        ["Summer S", "Letters P", "Promise S", "Harbour S", "Years P", "Garden S"],
    ),
    "Fantasy": (
        ["Enchanted", "Shadow", "Crystal", "Ancient", "Elven", "Cursed"],
        ["Crown S", "Sword S", "Realm S", "Prophecy S", "Forest S", "Throne S"],
    ),
    "Horror": (
        ["Hollow", "Bleeding", "Haunted", "Pale", "Rotten", "Whispering"],
        ["House S", "Night S", "Doll S", "Cellar S", "Woods P", "Ritual S"],
    ),
    "Romance": (
        ["Sweet", "Second", "Endless", "Parisian", "Autumn", "Stolen"],
        ["Kiss S", "Chance S", "Hearts P", "Love M", "Affair S", "Moments P"],
    ),
    "Sci-Fi": (
        ["Dark", "Quantum", "Red", "Silent", "Distant", "Artificial"],
        ["Orbit S", "Signal S", "Frontier S", "Colony S", "Horizon S", "Android S"],
    ),
    "Thriller": (
        ["Blind", "Double", "Deadly", "Twisted", "Perfect", "Hidden"],
        ["Game S", "Target S", "Agenda S", "Conspiracy S", "Pursuit S", "Motive S"],
    ),
}

# The fictional plots of the demo items: someone, in a situation, and how it feels.
_PEOPLE = (
    "Ada", "Bruno", "Chiara", "Dev", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas",
    "Kemi", "Lars", "Mina", "Nico", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tove",
    "Umar", "Vera", "Wen", "Yusuf", "Zoe",
)  # fmt: skip
_PLOTS = {
    "Action": (
        ("a retired bodyguard", "an undercover courier", "a disgraced pilot"),
        ("has one night to get a witness across a city that wants them both gone",
         "is framed for a robbery and must find the real crew before the police do",
         "is pulled back for one last job that goes wrong in the first five minutes"),
        "Fast, loud and built around a handful of breathless chases.",
    ),
    "Adventure": (
        ("a cartographer with debts", "a teenage stowaway", "a botanist who hates boats"),
        ("follows a dead explorer's notebook into country no map agrees on",
         "joins a river crossing that everyone else has turned back from",
         "goes looking for a lost brother and finds a kingdom instead"),
        "A big-hearted journey with a new view around every bend.",
    ),
    "Animation": (
        ("a small fox", "a robot who collects buttons", "a dragon afraid of heights"),
        ("sets out to bring the spring back to a village stuck in winter",
         "makes a friend of the one creature everyone warned them about",
         "enters a contest nobody expects them to finish"),
        "Bright, funny and gentle, for children and the adults beside them.",
    ),
    "Comedy": (
        ("a wedding planner", "a substitute teacher", "a very bad magician"),
        ("agrees to host the family reunion and loses control of it by lunchtime",
         "pretends to be an expert for a weekend and is believed far too well",
         "swaps flats with a stranger and inherits their neighbours"),
        "A quick, warm comedy of small lies getting out of hand.",
    ),
    "Crime": (
        ("a night-shift detective", "a getaway driver", "a bookkeeper for the wrong people"),
        ("finds the money from a famous heist in a dead man's garage",
         "is asked to look away once, and then again",
         "reopens a case the whole department would rather forget"),
        "A patient, moody story about who pays for a crime.",
    ),
    "Documentary": (
        ("a team of divers", "three generations of farmers", "a city's night workers"),
        ("through a year that changes how they live",
         "to show what it takes to keep a place running when nobody watches",
         "as they record a world that may not be there in twenty years"),
        "Calm, close and beautifully shot.",
    ),
    "Drama": (
        ("a widowed piano teacher", "a nurse on a last shift", "an estranged son"),
        ("spends one summer sorting through the letters of a life",
         "returns to a harbour town and the promise once broken there",
         "tries to keep the family garden alive as the years pull everyone apart"),
        "Quiet and tender, with performances that stay with you.",
    ),
    "Fantasy": (
        ("an apprentice smith", "a queen without a crown", "a thief with an honest face"),
        ("carries a cursed sword to the one forge that can unmake it",
         "must fulfil a prophecy that was meant for someone else",
         "finds a door to a realm where every bargain is kept to the letter"),
        "A sweeping tale of old magic and new courage.",
    ),
    "Horror": (
        ("a young architect", "a night caretaker", "a folklore student"),
        ("moves into a house whose cellar is always a little colder",
         "hears the whispering in the woods a week before anyone else does",
         "records a village ritual that was supposed to be harmless"),
        "Slow dread first, then no place left to hide.",
    ),
    "Romance": (
        ("a translator", "a bakery owner", "a touring cellist"),
        ("keeps meeting the same stranger in the wrong city",
         "gets a second chance with the one who left, ten years too late",
         "falls for the rival bidding on the same old house"),
        "A bittersweet love story that earns its ending.",
    ),
    "Sci-Fi": (
        ("a signals officer", "a botanist on the first colony ship",
         "an android who has started to dream"),
        ("picks up a message from a ship that vanished forty years ago",
         "learns that the colony's air is running out faster than anyone admits",
         "is sent to the edge of the known frontier with a crew that does not trust them"),
        "Thoughtful science fiction about what we owe to each other.",
    ),
    "Thriller": (
        ("a jury consultant", "a journalist", "a chess prodigy"),
        ("is drawn into a game where every move was planned years ago",
         "becomes the target of a conspiracy after one careless question",
         "discovers that the person following them has a motive of their own"),
        "Tight and twisting: you will not guess the last turn.",
    ),
}  # fmt: skip
# What a second genre adds, in a sentence's words.
_TOUCHES = {
    "Action": "a few hard-hitting fights", "Adventure": "a long journey",
    "Animation": "animated sequences", "Comedy": "plenty of laughs",
    "Crime": "a crime at its heart", "Documentary": "real archive footage",
    "Drama": "real heartbreak", "Fantasy": "a touch of magic", "Horror": "genuine scares",
    "Romance": "a love story", "Sci-Fi": "a science-fiction twist",
    "Thriller": "nail-biting suspense",
}  # fmt: skip

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
    """A title that reads like one: "An Ancient Realm", "Dirty Money", "The Lost Map"."""
    adjectives, nouns = _WORDS[genre]
    while True:
        adjective = adjectives[rng.integers(len(adjectives))]
        noun, kind = nouns[rng.integers(len(nouns))].split()
        other = nouns[rng.integers(len(nouns))].split()[0]
        patterns = ["The {a} {n}", "The {a} {n}", "{a} {n}", "{n} of the {a} {o}"]
        patterns.append("Beyond the {a} {o}" if kind != "S" else "The {n} and the {o}")
        if kind == "S":
            patterns.append(f"{blurbs.article(adjective).title()} {{a}} {{n}}")
        pattern = patterns[rng.integers(len(patterns))]
        if "{o}" in pattern and other == noun:  # not "Map of the Lost Map"
            continue
        title = pattern.format(a=adjective, n=noun, o=other)
        if title in used:
            title = f"{title} {('II', 'III', 'Returns', 'Reloaded', 'Rising')[rng.integers(5)]}"
        if title not in used:
            used.add(title)
            return title


def _plot(rng: np.random.Generator, title: str, year: int, genres: tuple[str, ...]) -> str:
    """A paragraph about a fictional film: who, what happens, how it feels."""
    roles, premises, mood = _PLOTS[genres[0]]
    person = _PEOPLE[rng.integers(len(_PEOPLE))]
    role = roles[rng.integers(len(roles))]
    premise = premises[rng.integers(len(premises))]
    if genres[0] == "Documentary":
        text = f"{title} ({year}) follows {role} {premise}. {mood}"
    else:
        text = f"In {title} ({year}), {person}, {role}, {premise}. {mood}"
    touches = [_TOUCHES[g] for g in genres[1:]]
    if touches:
        joined = touches[0] if len(touches) == 1 else f"{touches[0]} and {touches[1]}"
        text += f" Along the way there is {joined}."
    return text


def build(*, n_items: int = 2000, n_users: int = 600, seed: int = 7) -> DemoCatalogue:
    """Make the catalogue; the same arguments always give the same catalogue."""
    rng = np.random.default_rng(seed)
    # Words come from a stream of their own, so rewording titles never moves the ratings.
    words = np.random.default_rng([seed, 1])
    n_genres = len(GENRES)
    primary = rng.integers(n_genres, size=n_items)
    used: set[str] = set()
    items = []
    for index in range(n_items):
        genre = GENRES[primary[index]]
        extra = {GENRES[g] for g in rng.choice(n_genres, size=rng.integers(0, 3), replace=False)}
        genres = (genre, *sorted(extra - {genre}))
        title = _title(words, genre, used)
        year = int(words.integers(1960, 2025))
        items.append(DemoItem(title, year, genres, _plot(words, title, year, genres)))

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
