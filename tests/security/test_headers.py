"""Content-Security-Policy and Permissions-Policy on every kind of response (item 9).

tests/browser/test_csp.py checks that the pages and the API docs work under them.
"""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _directives(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())


@pytest.mark.parametrize(
    "path", ["/", "/accounts/login/", "/admin/login/", "/api/v1/items/", "/api/v1/nope/"]
)
def test_every_response_carries_both_policies(path):
    response = Client().get(path)
    directives = _directives(response)
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "camera=()" in response["Permissions-Policy"]


def test_only_the_api_docs_widen_styles_and_never_scripts():
    for path in ["/api/docs/", "/api/redoc/"]:
        directives = _directives(Client().get(path))
        assert directives["style-src"] == "'self' 'unsafe-inline'"
        assert directives["script-src"] == "'self'"
