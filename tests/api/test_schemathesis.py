"""Schemathesis against the live schema: every operation, generated valid and invalid
requests, through the real WSGI application (middleware, auth, throttling, handlers).

It fails on any 5xx, any response that breaks the schema (body, status code, content
type, headers), and any malformed request the API accepts. The number of cases run is
printed in pytest's summary.
"""

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.api import schemathesis_stats

# Per operation and generation phase; bounded so the whole run takes seconds.
MAX_EXAMPLES = 25

# Operations that rightly refuse some schema-valid input after looking at the database or
# the password rules (an unknown item or genre, a taken username, wrong credentials, a
# common password): for them a 400 to well-formed data is not a failure. Every other check
# (no 5xx, response conforms, malformed input rejected) still runs on them.
LOOKUP_400 = {
    "auth_register",
    "auth_token",
    "me_ratings_create",
    "items_list",
    "items_popular",
    "items_top_rated",
    "me_recommendations",
    "me_genres_update",
}


# Fetched from the running application at collection (pytest-django has set Django up by
# then; serving the schema touches no database). One pytest test per operation.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def keep_test_connection():
    # Like Django's test client: a request must not close the test's connection, which
    # holds the transaction every case runs in.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def token(published_model, db):
    """The demo user, made staff, on a published model: personal answers, staff endpoints."""
    user = get_user_model().objects.get(username="demo")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return Token.objects.create(user=user).key


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,  # the same cases every run: a CI failure reproduces locally
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, token, keep_test_connection):
    schemathesis_stats.cases += 1
    lookup = case.operation.definition.raw.get("operationId") in LOOKUP_400
    case.call_and_validate(
        headers={"Authorization": f"Token {token}"},
        excluded_checks=[positive_data_acceptance] if lookup else [],
    )
