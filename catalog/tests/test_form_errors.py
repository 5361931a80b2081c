"""Sign-up and log-in errors people (and screen readers) notice, under the right field."""

import re

import pytest
from django.urls import reverse

from catalog.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _input(page: str, name: str) -> str:
    return re.search(rf'<input [^>]*name="{name}"[^>]*>', page).group(0)


def test_a_short_password_is_reported_under_the_password_not_the_confirmation(client):
    page = client.post(
        reverse("signup"), {"username": "new", "password1": "abc", "password2": "abc"}
    ).content.decode()
    password = _input(page, "password1")
    assert 'aria-invalid="true"' in password and "id_password1_error" in password
    errors = re.search(r'<ul class="field-errors" id="id_password1_error">(.*?)</ul>', page)
    assert errors and "too short" in errors.group(1)
    assert "id_password2_error" not in page
    assert 'aria-invalid="true"' not in _input(page, "password2")


def test_mismatched_passwords_are_reported_under_the_confirmation(client):
    page = client.post(
        reverse("signup"),
        {"username": "new", "password1": "correct horse 42", "password2": "correct horse 43"},
    ).content.decode()
    assert 'id="id_password2_error"' in page and "id_password1_error" not in page


def test_the_error_summary_is_announced_takes_focus_and_links_to_each_field(client):
    page = client.post(reverse("signup"), {"username": "", "password1": "x"}).content.decode()
    summary = re.search(r'<div class="form-errors"[^>]*>', page).group(0)
    for attribute in ('role="alert"', 'tabindex="-1"', "autofocus", 'id="form-errors"'):
        assert attribute in summary
    # It comes before the username field's own autofocus, so it is what gets the focus.
    assert page.index('id="form-errors"') < page.index('name="username"')
    assert '<a href="#id_username">Username: This field is required.</a>' in page


def test_a_failed_log_in_marks_both_fields_and_describes_them_by_the_message(client):
    UserFactory(username="known")
    page = client.post(
        reverse("login"), {"username": "known", "password": "wrong"}
    ).content.decode()
    assert 'role="alert"' in page and "Please enter a correct username and password" in page
    for name in ("username", "password"):
        field = _input(page, name)
        assert 'aria-invalid="true"' in field and 'aria-describedby="form-errors"' in field


def test_the_forms_without_errors_have_no_summary(client):
    for name in ("login", "signup"):
        page = client.get(reverse(name)).content.decode()
        assert "form-errors" not in page and "aria-invalid" not in page
