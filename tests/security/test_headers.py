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


def _both_headers(middleware_class, path="/api/v1/items/", **response_attrs):
    import csp.constants
    from django.http import HttpResponse
    from django.test import RequestFactory

    request = RequestFactory().get(path)
    response = HttpResponse()
    for name, value in response_attrs.items():
        setattr(response, name, value)
    middleware = middleware_class(lambda request: response)
    middleware.process_request(request)
    out = middleware.process_response(request, response)
    return out.get(csp.constants.HEADER), out.get(csp.constants.HEADER_REPORT_ONLY)


def test_the_policy_built_once_is_django_csps_and_follows_the_settings(settings):
    """recsite.security.CSPMiddleware keeps the header it built: it must be the header
    django-csp builds, for every response, and a new one when the settings change."""
    import csp.middleware

    from recsite.security import CSPMiddleware

    ours, theirs = CSPMiddleware, csp.middleware.CSPMiddleware
    first = _both_headers(ours)
    assert first == _both_headers(ours) == _both_headers(theirs)
    assert "script-src 'self'" in first[0] and first[1] is None
    widened = {"_csp_update": {"style-src": ["'unsafe-inline'"]}}
    assert _both_headers(ours, **widened) == _both_headers(theirs, **widened) != first
    assert _both_headers(ours, _csp_exempt=True) == (None, None)

    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {
        "EXCLUDE_URL_PREFIXES": ["/static/"],
        "DIRECTIVES": {"default-src": ["'self'"], "report-uri": "/csp/"},
    }
    changed = _both_headers(ours)
    assert changed == _both_headers(theirs) and changed[0] == "default-src 'none'"
    assert "report-uri /csp/" in changed[1]
    assert _both_headers(ours, "/static/x.css") == _both_headers(theirs, "/static/x.css")
    assert _both_headers(ours, "/static/x.css")[1] is None
