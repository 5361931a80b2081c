"""One username rule on every path: NFKC, ASCII only, unique without regard to case (item 4).

Each path is driven the way a client uses it: the API's register, the sign-up page, the
importer; and the database refuses a case-only duplicate whatever path it came by.
"""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from rest_framework.test import APIClient

from catalog.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse 42"
FULLWIDTH_DEMO = "\uff24\uff25\uff2d\uff2f"  # ＤＥＭＯ
CYRILLIC_DEMO = "d\u0435mo"  # "dеmo" with a Cyrillic е


@pytest.fixture
def demo():
    return UserFactory(username="demo")


def _register(username):
    return APIClient().post(
        "/api/v1/auth/register/", {"username": username, "password": PASSWORD}, format="json"
    )


def _field_codes(response):
    return [e["code"] for e in response.json()["error"]["fields"]["username"]]


@pytest.mark.parametrize("username", [FULLWIDTH_DEMO, "DEMO", "Demo"])
def test_api_register_refuses_a_name_equal_to_an_existing_one_after_nfkc_and_case(demo, username):
    response = _register(username)
    assert response.status_code == 400
    assert _field_codes(response) == ["unique"]
    assert get_user_model().objects.count() == 1


@pytest.mark.parametrize("username", [CYRILLIC_DEMO, "dé", "a b", "a/b"])
def test_api_register_refuses_names_outside_the_ascii_rule(username):
    response = _register(username)
    assert response.status_code == 400
    assert _field_codes(response) == ["invalid"]


def test_api_register_stores_the_normalised_name():
    response = _register("\uff2e\uff45\uff57")  # Ｎｅｗ
    assert response.status_code == 201
    assert response.json()["username"] == "New"


@pytest.mark.parametrize("username", [FULLWIDTH_DEMO, "DEMO", CYRILLIC_DEMO])
def test_sign_up_page_applies_the_same_rule(client, demo, username):
    response = client.post(
        reverse("signup"), {"username": username, "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 200  # the form again, with its error
    assert response.context["form"].errors["username"]
    assert get_user_model().objects.count() == 1


def test_the_database_refuses_a_case_only_duplicate_whatever_the_path(demo):
    with pytest.raises(IntegrityError), transaction.atomic():
        get_user_model().objects.create(username="DEMO")


@pytest.mark.parametrize(
    "lines, options, named",
    [
        (["1,1,4"], ["--namespace", "\uff4d\uff4c"], "namespace"),  # fullwidth "ml"
        (["1,1,4", f"{CYRILLIC_DEMO},1,3"], ["--format", "csv"], "username"),
    ],
    ids=["namespace", "user-id"],
)
def test_importer_refuses_names_outside_the_rule_and_imports_nothing(
    tmp_path, lines, options, named
):
    (tmp_path / "r.csv").write_text("user,item,rating\n" + "\n".join(lines) + "\n")
    with pytest.raises(CommandError, match=named):
        call_command(
            "import_ratings", str(tmp_path / "r.csv"), *options, verbosity=0, stdout=StringIO()
        )
    assert not get_user_model().objects.exists()
