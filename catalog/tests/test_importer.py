"""The importer: format detection, all-or-nothing on bad lines, idempotence, newer wins.

Small files are written by the tests themselves; the MovieLens 100k test reads the real
files from ../shared/data and skips where they are absent.
"""

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management import CommandError, call_command
from django.utils import timezone

from catalog.importers.formats import open_source, split_title
from catalog.models import Genre, Item, Rating

pytestmark = pytest.mark.django_db

ML100K_ITEMS = (
    "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "2|Usual Suspects, The (1995)|01-Jan-1995||http://x|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|1|0|0\n"
)


def _import(path, *args):
    out = StringIO()
    call_command("import_ratings", str(path), *args, verbosity=0, stdout=out)
    return out.getvalue()


def _scores():
    return {
        (r.user.username, r.item.external_id): r.score
        for r in Rating.objects.select_related("user", "item")
    }


@pytest.fixture
def ml100k_like(tmp_path):
    (tmp_path / "u.item").write_text(ML100K_ITEMS, encoding="latin-1")
    (tmp_path / "u.data").write_text(
        "10\t1\t5\t881250949\n11\t1\t3\t881250950\n10\t2\t4\t881250951\n"
    )
    return tmp_path


def test_split_title_moves_trailing_articles_and_takes_the_year():
    assert split_title("Usual Suspects, The (1995)") == ("The Usual Suspects", 1995)
    assert split_title("Toy Story (1995)") == ("Toy Story", 1995)
    assert split_title("Untitled") == ("Untitled", None)


def test_ml100k_folder_imports_items_genres_users_and_ratings(ml100k_like):
    report = _import(ml100k_like)
    assert "Imported 3 ratings" in report
    toy = Item.objects.get(external_id="ml100k:1")
    assert (toy.title, toy.year) == ("Toy Story", 1995)
    assert sorted(toy.genres.values_list("name", flat=True)) == [
        "Animation",
        "Children's",
        "Comedy",
    ]
    assert (toy.rating_count, toy.rating_sum) == (2, 8.0)
    assert Item.objects.get(external_id="ml100k:2").title == "The Usual Suspects"
    assert _scores()[("ml100k-10", "ml100k:1")] == 5.0
    rating = Rating.objects.get(user__username="ml100k-10", item__external_id="ml100k:1")
    assert rating.updated == datetime.fromtimestamp(881250949, tz=UTC)
    assert not get_user_model().objects.get(username="ml100k-10").has_usable_password()


def test_importing_twice_keeps_one_rating_per_pair(ml100k_like):
    _import(ml100k_like)
    _import(ml100k_like)
    assert Rating.objects.count() == 3
    assert Item.objects.count() == 2
    assert Genre.objects.filter(name="Comedy").count() == 1
    assert Item.objects.get(external_id="ml100k:1").rating_count == 2


def test_the_newer_rating_wins_within_a_file_and_across_imports(tmp_path):
    first = tmp_path / "first.csv"
    first.write_text("user,item,rating,timestamp\n1,7,2,100\n1,7,4,300\n1,7,3,200\n")
    _import(first)
    assert _scores() == {("csv-1", "csv:7"): 4.0}
    older = tmp_path / "older.csv"
    older.write_text("1,7,1,250\n")
    _import(older)
    assert _scores() == {("csv-1", "csv:7"): 4.0}
    newer = tmp_path / "newer.csv"
    newer.write_text("1,7,1.5,400\n")
    _import(newer)
    assert _scores() == {("csv-1", "csv:7"): 1.5}
    assert Item.objects.get(external_id="csv:7").rating_sum == 1.5


def test_without_timestamps_the_later_line_wins(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("1,7,2\n1,7,3.5\n")
    _import(path)
    assert _scores() == {("csv-1", "csv:7"): 3.5}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("1,2", "expected 3 or 4 fields, found 2"),
        ("1,2,7", "score 7 is out of range"),
        ("1,2,abc", "score 'abc' is not a number"),
        ("1,2,3.3", "score 3.3 is out of range"),
        ("1,2,4,yesterday", "timestamp 'yesterday' is not a Unix time"),
        (",2,4", "the user and item ids must not be empty"),
    ],
)
def test_a_bad_line_stops_the_import_naming_file_line_and_reason_and_keeps_nothing(
    tmp_path, line, reason
):
    path = tmp_path / "ratings.csv"
    path.write_text("user,item,rating\n" + "\n".join(["5,1,4", "5,2,3"] * 3000) + f"\n{line}\n")
    with pytest.raises(CommandError) as raised:
        _import(path)
    message = str(raised.value)
    assert f"{path}, line 6002: {reason}" in message
    assert "Nothing was imported" in message
    assert not Rating.objects.exists()
    assert not Item.objects.exists()
    assert not get_user_model().objects.exists()


def test_skip_invalid_skips_and_reports_bad_lines(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("1,1,4\n1,2,9\n2,1,x\n2,2,3\n")
    out = _import(path, "--skip-invalid")
    assert "Skipped 2 invalid line(s)" in out
    assert "line 2: score 9 is out of range" in out
    assert "line 3: score 'x' is not a number" in out
    assert Rating.objects.count() == 2


def test_movielens_dat_and_csv_layouts_are_detected(tmp_path):
    dat = tmp_path / "ml-1m"
    dat.mkdir()
    (dat / "movies.dat").write_bytes("1::Amélie (2001)::Comedy|Romance\n".encode("latin-1"))
    (dat / "ratings.dat").write_text("1::1::5::978300760\n")
    latest = tmp_path / "ml-latest"
    latest.mkdir()
    (latest / "movies.csv").write_text(
        'movieId,title,genres\n1,"Good, the Bad and the Ugly, The (1966)",Western\n'
        "2,Nothing (2003),(no genres listed)\n"
    )
    (latest / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.5,1\n1,2,0.5,2\n")
    assert open_source(dat).name == "ml1m"
    assert open_source(latest).name == "mllatest"
    _import(dat)
    _import(latest)
    amelie = Item.objects.get(external_id="ml1m:1")
    assert amelie.title == "Amélie"
    assert set(amelie.genres.values_list("name", flat=True)) == {"Comedy", "Romance"}
    western = Item.objects.get(external_id="mllatest:1")
    assert (western.title, western.year) == ("The Good, the Bad and the Ugly", 1966)
    assert not Item.objects.get(external_id="mllatest:2").genres.exists()
    assert _scores()[("mllatest-1", "mllatest:2")] == 0.5


def test_a_plain_csv_creates_bare_items_for_unknown_ids(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("u1,i9,3\n")
    _import(path, "--namespace", "shop")
    item = Item.objects.get(external_id="shop:i9")
    assert item.title == "Item i9"
    assert get_user_model().objects.filter(username="shop-u1").exists()


def test_users_and_bare_items_are_inserted_as_the_orm_would_create_them(tmp_path):
    """The import writes users and bare items in bulk (COPY or one executemany), not
    through the ORM: every column holds what creating them through the ORM gives."""
    path = tmp_path / "mine.csv"
    path.write_text("u1,i9,3\nu2,i9,4\n")
    before = timezone.now()
    _import(path, "--namespace", "shop")
    User = get_user_model()
    reference = User.objects.create(username="shop-ref", password=make_password(None))
    varying = {"id", "username", "password", "date_joined"}
    for name in ("shop-u1", "shop-u2"):
        user = User.objects.get(username=name)
        for field in User._meta.concrete_fields:
            if field.attname not in varying:
                assert getattr(user, field.attname) == getattr(reference, field.attname)
        assert not user.has_usable_password()
        assert before <= user.date_joined <= reference.date_joined
    item = Item.objects.get(external_id="shop:i9")
    reference = Item.objects.create(title="Item i9", external_id="shop:ref")
    varying = {
        "id",
        "external_id",
        "created",
        "updated",
        "rating_count",
        "rating_sum",
        "popularity_band",
    }
    for field in Item._meta.concrete_fields:
        if field.attname not in varying:
            assert getattr(item, field.attname) == getattr(reference, field.attname)
    assert (item.rating_count, item.rating_sum, item.popularity_band) == (2, 7.0, 2)
    assert before <= item.created <= item.updated <= reference.created


def test_unreadable_sources_give_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        _import(tmp_path / "missing")
    with pytest.raises(CommandError, match="does not look like MovieLens 100k"):
        _import(tmp_path, "--format", "ml100k")


@pytest.mark.slow
def test_movielens_100k_imports_completely(ml100k_dir):
    _import(ml100k_dir)
    assert Rating.objects.count() == 100_000
    assert Item.objects.count() == 1682
    assert get_user_model().objects.count() == 943
    star_wars = Item.objects.get(external_id="ml100k:50")
    assert (star_wars.title, star_wars.year, star_wars.rating_count) == ("Star Wars", 1977, 583)
