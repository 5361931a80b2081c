"""The one username rule, for every path that makes a user: the API's register, the
sign-up page and the importer.

A username is NFKC-normalised (fullwidth ``ＤＥＭＯ`` becomes ``DEMO``), then may hold only
ASCII letters, digits and ``@ . + - _`` (so no look-alike letters from other scripts, and
case folding means the same in Python and in every database's ``LOWER``), and is unique
without regard to case. The last part is also a database guarantee: a unique index on
``LOWER(username)`` (migration ``accounts.0001``).
"""

import re
import unicodedata

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

MAX_LENGTH = 150
_ALLOWED = re.compile(r"[A-Za-z0-9@.+_-]+")

INVALID_MESSAGE = "Use only letters A-Z, digits and @ . + - _ (at most 150 characters)."
TAKEN_MESSAGE = "That username is taken."


def normalize(value: str) -> str:
    return unicodedata.normalize("NFKC", value)


def validate_form(value: str) -> str:
    """The normalised username, or ValidationError (code ``invalid``) when it breaks the
    rule's form. Does not look at the database."""
    name = normalize(value)
    if not name or len(name) > MAX_LENGTH or not _ALLOWED.fullmatch(name):
        raise ValidationError(INVALID_MESSAGE, code="invalid")
    return name


def is_taken(name: str) -> bool:
    """Whether a user's name equals ``name`` without regard to case."""
    return get_user_model().objects.filter(username__iexact=normalize(name)).exists()


def validate_new(value: str) -> str:
    """The normalised username for a new account, or ValidationError (``invalid`` or
    ``unique``)."""
    name = validate_form(value)
    if is_taken(name):
        raise ValidationError(TAKEN_MESSAGE, code="unique")
    return name


def validate_generated(name: str) -> str:
    """For names a program builds (the importer's ``<namespace>-<id>``): the name must
    already be in normal form, since the program finds its users again by that name."""
    if normalize(name) != name:
        raise ValidationError(
            f"{name!r} is not in normal form (NFKC): {INVALID_MESSAGE}", code="invalid"
        )
    try:
        return validate_form(name)
    except ValidationError:
        raise ValidationError(f"{name!r} is not a valid username: {INVALID_MESSAGE}") from None
