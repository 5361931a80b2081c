"""Reads of the catalogue that pages and the API share."""

from __future__ import annotations

import difflib
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache

from django.db import connection, connections
from django.db.models import Case, F, FloatField, Q, QuerySet, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, NullIf

from catalog import search_index
from catalog.cards import GenreCard, ItemCard, static_parts
from catalog.models import Genre, HiddenItem, Item, Rating

ITEM_ORDERINGS = {
    # Best match first, then the most rated; without a search, the same as "-count".
    "relevance": (F("relevance").desc(nulls_last=True), "-rating_count", "id"),
    # By count through the index of its band (see Item.popularity_band): the same order as
    # by rating_count alone, as the band only grows with the count.
    "title": ("title", "id"),
    "-title": ("-title", "-id"),
    "year": (F("year").asc(nulls_last=True), "id"),
    "-year": (F("year").desc(nulls_last=True), "id"),
    "average": (F("average").asc(nulls_last=True), "id"),
    "-average": (F("average").desc(nulls_last=True), "id"),
    "count": ("popularity_band", "rating_count", "id"),
    "-count": ("-popularity_band", "-rating_count", "id"),
}

# Words too common to tell titles apart: "A" alone must not list every "A ..." title.
SEARCH_STOP_WORDS = frozenset(
    ["a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "of", "on", "or", "the",
     "to", "with"]
)  # fmt: skip
# difflib ratio a misspelt word needs with a title word to stand for it ("drak" and
# "dark" score 0.75); shorter words are left alone, where a typo is a guess.
SPELLING_CUTOFF = 0.7
SPELLING_MIN_LENGTH = 4
SPELLING_ALTERNATIVES = 3
# PostgreSQL: pg_trgm word similarity that counts as a match on its own ("colny").
TRIGRAM_MIN_SIMILARITY = 0.5
# Words of a query past this many are ignored: titles are short, and each word costs a
# lookup (and, when misspelt, a pass over the vocabulary).
MAX_SEARCH_WORDS = 8


def item_list(
    *,
    search: str = "",
    genre: str = "",
    ordering: str = "-count",
    active_only: bool = True,
    plan: list[_SearchWord] | None = None,
) -> QuerySet[Item]:
    """Items matching a title search and a genre slug, with ``average`` annotated.

    ``ordering`` is one of ``ITEM_ORDERINGS``; an unknown value raises ValueError. With a
    search, items carry ``relevance`` too (see ``item_search``). ``plan`` is
    ``search_plan(search)`` when the caller has it already (its spelling look-ups query
    the database, so a page that also shows ``search_corrections`` makes them once).
    """
    if ordering not in ITEM_ORDERINGS:
        raise ValueError(f"unknown ordering {ordering!r}; use one of {sorted(ITEM_ORDERINGS)}")
    items = Item.objects.all()
    if active_only:
        items = items.filter(is_active=True)
    if genre:
        items = items.filter(genres__slug=genre)
    if search.strip():
        items = _matching(items, search, search_plan(search) if plan is None else plan)
    elif ordering == "relevance":
        ordering = "-count"
    items = items.annotate(average=_average_expression())
    return items.order_by(*ITEM_ORDERINGS[ordering]).prefetch_related("genres")


def item_search(*, query: str, genre: str = "", ordering: str = "relevance") -> QuerySet[Item]:
    """Active items whose titles match ``query``, best match first, then most rated.

    Every word must match the start of a word of the title, in any order ("colony dark"
    finds "The Dark Colony"); common words ("a", "the") are ignored, and a query of
    nothing else only finds a title equal to it. A word that starts no title word also
    matches the title words spelt most like it ("drak" -> "dark"). The index is FTS5 on
    SQLite (ranked by bm25) and PostgreSQL full-text search on the ``simple``
    configuration (ranked by ts_rank) plus pg_trgm word similarity; see
    catalog/search_index.py.
    """
    return item_list(search=query, genre=genre, ordering=ordering)


def search_words(query: str) -> list[str]:
    """The words of ``query`` that search for something: lower case, letters and digits
    only (so nothing reaches a query syntax), no stop words, no repeats, at most
    ``MAX_SEARCH_WORDS``."""
    words = re.findall(r"[^\W_]+", query.lower())
    kept = [word for word in dict.fromkeys(words) if word not in SEARCH_STOP_WORDS]
    return kept[:MAX_SEARCH_WORDS]


def search_plan(query: str) -> list[_SearchWord]:
    """Each search word of ``query`` with the title words it matches in its place."""
    return [_search_word(text) for text in search_words(query)]


def search_corrections(plan: list[_SearchWord]) -> dict[str, list[str]]:
    """The words of a ``search_plan`` that start no title word, each with the title words
    a search uses in their place (empty when none is close)."""
    return {word.text: word.terms[1:] for word in plan if not word.known}


def _matching(items: QuerySet[Item], query: str, words: list[_SearchWord]) -> QuerySet[Item]:
    if not words:
        return items.filter(title__iexact=query.strip()).annotate(relevance=Value(1.0))
    if connection.vendor == "sqlite":
        # Each word as a prefix, its spellings OR'd, all words AND'ed; every term quoted,
        # and made of letters and digits only, so no FTS5 operator comes from the user.
        match = " AND ".join(
            "(" + " OR ".join(f'"{term}"*' for term in word.terms) + ")" for word in words
        )
        fts = search_index.FTS_TABLE
        item_table = Item._meta.db_table
        return items.filter(
            pk__in=RawSQL(f"SELECT rowid FROM {fts} WHERE {fts} MATCH %s", (match,))
        ).annotate(
            # bm25 is lower for a better match.
            relevance=RawSQL(
                f"SELECT -bm25({fts}) FROM {fts} WHERE {fts} MATCH %s"
                f' AND {fts}.rowid = "{item_table}"."id"',
                (match,),
                output_field=FloatField(),
            )
        )
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchRank, SearchVector, TrigramWordSimilarity

        # Every word must match the full-text index (as a prefix, or one of its
        # spellings); a word that starts no title word may instead be close to one by
        # pg_trgm's word similarity. Known words never need the trigram test, so their
        # searches stay on the GIN index.
        vector = SearchVector("title", config="simple")
        found = _tsquery([word.terms for word in words])
        items = items.annotate(search_vector=vector)
        similarities = []
        for n, word in enumerate(words):
            condition = Q(search_vector=_tsquery([word.terms]))
            if not word.known:
                name = f"similarity_{n}"
                items = items.annotate(**{name: TrigramWordSimilarity(Value(word.text), "title")})
                condition |= Q(**{f"{name}__gte": TRIGRAM_MIN_SIMILARITY})
                similarities.append(F(name))
            items = items.filter(condition)
        # Titles matching every word by the index come before those found by trigrams.
        relevance = Case(When(search_vector=found, then=Value(1.0)), default=Value(0.0))
        relevance = relevance + SearchRank(vector, found)
        for similarity in similarities:
            relevance = relevance + similarity / len(words)
        return items.annotate(relevance=relevance)
    # Any other database: every word somewhere in the title, unranked.
    for word in words:
        items = items.filter(title__icontains=word.text)
    return items.annotate(relevance=Value(1.0))


def _tsquery(alternatives: list[list[str]]):
    """A PostgreSQL query: every word's spellings as prefixes, OR'd; the words AND'ed."""
    from django.contrib.postgres.search import SearchQuery

    raw = " & ".join("(" + " | ".join(f"{t}:*" for t in terms) + ")" for terms in alternatives)
    return SearchQuery(raw, search_type="raw", config="simple")


@dataclass(frozen=True)
class _SearchWord:
    text: str
    terms: list[str]  # the word itself first, then the title words spelt like it
    known: bool  # some title word starts with it (or it is too short to correct)


def _search_word(text: str) -> _SearchWord:
    """``text``, plus, when no title word starts with it, the title words spelt most like
    it (difflib's ratio over the index's vocabulary)."""
    if len(text) < SPELLING_MIN_LENGTH or _starts_a_title_word(text):
        return _SearchWord(text, [text], True)
    close = difflib.get_close_matches(
        text, _title_vocabulary(), n=SPELLING_ALTERNATIVES, cutoff=SPELLING_CUTOFF
    )
    return _SearchWord(text, [text, *close], False)


def _starts_a_title_word(word: str) -> bool:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                f"SELECT 1 FROM {search_index.VOCAB_TABLE} WHERE term >= %s AND term < %s LIMIT 1",
                [word, word + "\U0010ffff"],
            )
        elif connection.vendor == "postgresql":
            cursor.execute(
                f"SELECT 1 FROM {Item._meta.db_table} WHERE to_tsvector('simple'::regconfig,"
                " COALESCE(title, '')) @@ to_tsquery('simple', %s) LIMIT 1",
                [f"{word}:*"],
            )
        else:
            return True
        return cursor.fetchone() is not None


def _title_vocabulary() -> list[str]:
    """Every word of every title, read only when a word of a search is unknown.

    SQLite reads the FTS5 index's own term list; PostgreSQL has none, so ts_stat scans
    the titles (paid only on a misspelt search).
    """
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"SELECT term FROM {search_index.VOCAB_TABLE}")
        else:
            table = Item._meta.db_table
            cursor.execute(
                "SELECT word FROM ts_stat(%s)",
                [f"SELECT to_tsvector('simple'::regconfig, COALESCE(title, '')) FROM {table}"],
            )
        return [row[0] for row in cursor.fetchall()]


def _average_expression():
    # NULL for unrated items (the division by a NULLIF'd zero), so they sort last.
    return Cast(F("rating_sum"), FloatField()) / NullIf(F("rating_count"), 0)


def genre_list() -> QuerySet[Genre]:
    return Genre.objects.all()


def user_rating_for_item(*, user, item: Item) -> Rating | None:
    if not user.is_authenticated:
        return None
    return Rating.objects.filter(user=user, item=item).first()


def user_scores_for_items(*, user, item_ids) -> dict[int, float]:
    """The user's score per item id, for marking lists with "you rated"."""
    if not user.is_authenticated:
        return {}
    return dict(
        Rating.objects.filter(user=user, item_id__in=list(item_ids)).values_list("item_id", "score")
    )


def user_rating_list(*, user, ordering: str = "-updated") -> QuerySet[Rating]:
    allowed = {"-updated", "updated", "-score", "score", "item__title", "-item__title"}
    if ordering not in allowed:
        raise ValueError(f"unknown ordering {ordering!r}; use one of {sorted(allowed)}")
    return Rating.objects.filter(user=user).select_related("item").order_by(ordering, "id")


def global_mean_score() -> float | None:
    """The mean of all ratings, from the per-item sums (one small aggregate)."""
    from django.db.models import Sum

    totals = Item.objects.aggregate(n=Sum("rating_count"), s=Sum("rating_sum"))
    return totals["s"] / totals["n"] if totals["n"] else None


def item_top_rated(*, genre: str = "", limit: int = 10, prior_weight: int = 10) -> list[Item]:
    """Items by damped mean: (sum + m * C) / (count + m), C the global mean, m prior_weight.

    A damped (Bayesian) mean keeps an item rated 5 by one person below one rated 4.6 by
    three hundred.

    Freshness: the ranking (which items, in which order) is computed at most once every
    ``TOP_RATED_CACHE_SECONDS`` per process and genre (``_top_rated``), so it is
    at most that old; the items are read at every call, so their counts and averages are
    current and an item hidden from the catalogue (or left without ratings) since is
    left out at once. 0 ranks at every call.
    """
    from django.conf import settings

    key, now = (genre, prior_weight), time.monotonic()
    kept = _top_rated.get(key)
    if (
        kept is not None
        and now - kept[0] < settings.TOP_RATED_CACHE_SECONDS
        and (limit + _TOP_RATED_SPARE <= kept[1] or len(kept[2]) < kept[1])
    ):  # kept, long enough (or all there are)
        ids = kept[2]
        found = _top_rated_items(ids[:limit])
        if len(found) < limit:  # some left out since: the next ones kept fill in
            found += _top_rated_items(ids[limit:])
        position = {pk: p for p, pk in enumerate(ids)}
        return sorted(found, key=lambda item: position[item.pk])[:limit]
    asked = limit + _TOP_RATED_SPARE
    ranked = _top_rated_ranking(genre=genre, limit=asked, prior_weight=prior_weight)
    if settings.TOP_RATED_CACHE_SECONDS > 0:
        _top_rated[key] = (now, asked, [item.pk for item in ranked])
    return ranked[:limit]


# Ranking every active rated item by damped mean is one pass over the catalogue after
# another for the global mean (16.6 / 22.7 ms p50 / p99 at 25M ratings, 60k items, on
# PostgreSQL). Kept per process: (genre, prior weight) -> (monotonic time, how many were
# ranked, their ids best first). A few more than asked are kept, so that an item left out
# meanwhile (hidden from the catalogue) leaves the list full.
_TOP_RATED_SPARE = 20
_top_rated: dict[tuple[str, int], tuple[float, int, list[int]]] = {}


def _top_rated_items(ids: list[int]) -> list[Item]:
    """These items as they are now, if still active and rated (in no particular order)."""
    if not ids:
        return []
    items = Item.objects.filter(pk__in=ids, is_active=True, rating_count__gt=0)
    return list(items.annotate(average=_average_expression()).prefetch_related("genres"))


def _top_rated_ranking(*, genre: str, limit: int, prior_weight: int) -> list[Item]:
    """The ``limit`` best active rated items by damped mean, best first (ties: lower id
    first)."""
    from django.db.models import Value

    prior = global_mean_score()
    if prior is None:
        return []
    items = Item.objects.filter(is_active=True, rating_count__gt=0)
    if genre:
        items = items.filter(genres__slug=genre)
    damped = (F("rating_sum") + Value(prior * prior_weight)) / (
        Cast(F("rating_count"), FloatField()) + Value(float(prior_weight))
    )
    return list(
        items.annotate(damped_mean=damped, average=_average_expression())
        .order_by("-damped_mean", "id")
        .prefetch_related("genres")[:limit]
    )


def item_most_popular(*, genre: str = "", limit: int = 10) -> list[Item]:
    return list(item_list(genre=genre, ordering="-count")[:limit])


def user_hidden_item_ids(*, user) -> set[int]:
    if not user.is_authenticated:
        return set()
    return set(HiddenItem.objects.filter(user=user).values_list("item_id", flat=True))


# -- the hot reads of the stored-list path: hand-written SQL ---------------------------------
# A stored recommendation list is served with one Redis read and the two statements below.
# Through the ORM they cost about ten times their SQL (query building dominates at these
# sizes), so they are written out once here; tests check them against the ORM's answers.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _sql_names():
    return _quoted_names(connection.alias)


@cache
def _quoted_names(alias):
    q = connections[alias].ops.quote_name
    through = Item.genres.through
    return {
        "item": q(Item._meta.db_table),
        "genre": q(Genre._meta.db_table),
        "item_genre": q(through._meta.db_table),
        "ig_item": q(through._meta.get_field("item").column),
        "ig_genre": q(through._meta.get_field("genre").column),
        "rating": q(Rating._meta.db_table),
        "hidden": q(HiddenItem._meta.db_table),
    }


def _micros(value) -> int:
    """A timestamp from the database (SQLite: text in UTC; PostgreSQL: aware) in
    microseconds since the epoch."""
    if value is None:
        return 0
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MICROSECOND


def _stamp(n_ratings, last_updated, score_sum, n_hidden, last_hidden) -> str:
    # Scores are halves, so their sum is exact and the same whatever the order summed.
    return (
        f"{n_ratings or 0}:{_micros(last_updated)}:{float(score_sum or 0)!r}:"
        f"{n_hidden or 0}:{last_hidden or 0}"
    )


def user_taste_stamp(*, user_id: int) -> str:
    """A short string that changes whenever the user's ratings or hidden items change.

    Built from the database itself (the count, newest time and score sum of the ratings;
    the count and newest id of the hidden rows), so every kind of write counts: the
    site, the API, the admin, an import (whose ratings may carry old times: the sum
    still moves when a score does).
    A stored recommendation list carries the stamp it was computed at; a different stamp
    now means the list is out of date.
    """
    with connection.cursor() as cursor:
        cursor.execute(_taste_stamp_sql(connection.alias), [user_id] * 5)
        return taste_stamp(cursor.fetchone())


@cache
def _taste_stamp_sql(alias) -> str:
    return f"SELECT {', '.join(taste_stamp_columns('%s'))}"


def taste_stamp_columns(user: str) -> list[str]:
    """The five SQL expressions ``user_taste_stamp`` reads, for the user ``user`` (a
    placeholder, or a column of another table: the token lookup reads them beside the
    token, ``recommendations.api.authentication``); ``taste_stamp`` makes the stamp."""
    t = _sql_names()
    return [
        f"(SELECT COUNT(*) FROM {t['rating']} WHERE user_id = {user})",
        f"(SELECT MAX(updated) FROM {t['rating']} WHERE user_id = {user})",
        f"(SELECT SUM(score) FROM {t['rating']} WHERE user_id = {user})",
        f"(SELECT COUNT(*) FROM {t['hidden']} WHERE user_id = {user})",
        f"(SELECT MAX(id) FROM {t['hidden']} WHERE user_id = {user})",
    ]


def taste_stamp(values) -> str:
    """The stamp from the five values of ``taste_stamp_columns``, in their order."""
    return _stamp(*values)


def user_taste_stamps() -> dict[int, str]:
    """``user_taste_stamp`` of every user with a rating, in two grouped statements."""
    t = _sql_names()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT user_id, COUNT(*), MAX(id) FROM {t['hidden']} GROUP BY user_id")
        hidden = {user_id: (n, last) for user_id, n, last in cursor.fetchall()}
        cursor.execute(
            f"SELECT user_id, COUNT(*), MAX(updated), SUM(score) FROM {t['rating']}"
            " GROUP BY user_id"
        )
        stamps = {}
        while rows := cursor.fetchmany(20_000):
            for user_id, n, last, total in rows:
                stamps[user_id] = _stamp(n, last, total, *hidden.get(user_id, (0, 0)))
    return stamps


def user_recent_high_ratings(*, user_id: int, limit: int, min_score: float = 4.0) -> list[int]:
    """Item ids of the user's newest ratings of at least ``min_score``, of active items,
    newest first (the ``rating_user_recent_idx`` order)."""
    ratings = Rating.objects.filter(user_id=user_id, score__gte=min_score, item__is_active=True)
    return list(ratings.order_by("-updated", "-id").values_list("item_id", flat=True)[:limit])


def user_rated_or_hidden_among(*, user_id: int, item_ids) -> set[int]:
    """Which of ``item_ids`` the user rated or hid: one statement whose cost follows
    ``item_ids``, not the user's history (a panel asks about its few dozen candidates)."""
    ids = list(dict.fromkeys(int(i) for i in item_ids))
    if not ids:
        return set()
    t = _sql_names()
    marks = ", ".join(["%s"] * len(ids))
    sql = (
        f"SELECT item_id FROM {t['rating']} WHERE user_id = %s AND item_id IN ({marks})"
        f" UNION ALL SELECT item_id FROM {t['hidden']} WHERE user_id = %s AND item_id IN ({marks})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id, *ids, user_id, *ids])
        return {row[0] for row in cursor.fetchall()}


def user_rated_or_hidden_ids(*, user_id: int) -> set[int]:
    """Every item the user rated or hid, in one statement (what a list of the whole
    catalogue leaves out for them)."""
    t = _sql_names()
    sql = (
        f"SELECT item_id FROM {t['rating']} WHERE user_id = %s"
        f" UNION ALL SELECT item_id FROM {t['hidden']} WHERE user_id = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id, user_id])
        return {row[0] for row in cursor.fetchall()}


def item_cards(item_ids, *, generation=None) -> dict[int, ItemCard]:
    """Cards of the given items (any that exist), by id, in one statement; genres in
    name order.

    With ``generation`` (the catalogue's, ``recommendations.store.catalogue_generation``,
    which every edit of a title, year or genre changes), titles, years and genres come
    from this process's ``cards.static_parts`` kept under it, and the statement reads
    only what changes with ratings (active, count, sum), without the genre joins; items
    not kept yet are read whole, in a second statement.
    """
    ids = list(dict.fromkeys(int(i) for i in item_ids))
    if not ids:
        return {}
    if generation is not None:
        return _item_cards_kept(ids, generation)
    with connection.cursor() as cursor:
        cursor.execute(_item_cards_sql(connection.alias, len(ids)), ids)
        rows = cursor.fetchall()
    return _cards_from_rows(rows)


def _cards_from_rows(rows) -> dict[int, ItemCard]:
    cards: dict[int, ItemCard] = {}
    genres: dict[int, GenreCard] = {}  # one object per genre, shared by the cards
    for item_id, title, year, active, count, total, genre_id, name, slug in rows:
        card = cards.get(item_id)
        if card is None:
            # SQLite answers booleans as 0 or 1.
            card = cards[item_id] = ItemCard(item_id, title, year, bool(active), count, total)
        if genre_id is not None:
            genre = genres.get(genre_id)
            if genre is None:
                genre = genres[genre_id] = GenreCard(genre_id, name, slug)
            card.genres.append(genre)
    return cards


def _item_cards_kept(ids: list[int], generation) -> dict[int, ItemCard]:
    kept = static_parts.under(generation, time.monotonic())
    with connection.cursor() as cursor:
        cursor.execute(_item_live_sql(connection.alias, len(ids)), ids)
        rows = cursor.fetchall()
    missing = [row[0] for row in rows if row[0] not in kept]
    if missing:
        with connection.cursor() as cursor:
            cursor.execute(_item_cards_sql(connection.alias, len(missing)), missing)
            for card in _cards_from_rows(cursor.fetchall()).values():
                kept[card.id] = (card.title, card.year, tuple(card.genres), {})
    cards: dict[int, ItemCard] = {}
    for item_id, active, count, total in rows:
        parts = kept.get(item_id)
        if parts is None:  # deleted between the two statements
            continue
        title, year, genres, memo = parts
        cards[item_id] = ItemCard(item_id, title, year, bool(active), count, total, [*genres], memo)
    return cards


@lru_cache(maxsize=512)
def _item_cards_sql(alias, n: int) -> str:
    t = _quoted_names(alias)
    return (
        "SELECT i.id, i.title, i.year, i.is_active, i.rating_count, i.rating_sum,"
        f" g.id, g.name, g.slug FROM {t['item']} i"
        f" LEFT JOIN {t['item_genre']} ig ON ig.{t['ig_item']} = i.id"
        f" LEFT JOIN {t['genre']} g ON g.id = ig.{t['ig_genre']}"
        f" WHERE i.id IN ({', '.join(['%s'] * n)}) ORDER BY i.id, g.name"
    )


@lru_cache(maxsize=512)
def _item_live_sql(alias, n: int) -> str:
    t = _quoted_names(alias)
    return (
        f"SELECT id, is_active, rating_count, rating_sum FROM {t['item']}"
        f" WHERE id IN ({', '.join(['%s'] * n)})"
    )
