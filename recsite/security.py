"""What guards the site as a whole: the trusted client address, JSON-only errors under
/api/, a busy database answered with 503, and the login lockout's hooks into django-axes.

django-csp's middleware is used through ``CSPMiddleware`` here, which builds its header once.

SECURITY.md at the project root says what each protects and which settings a deployment
behind a proxy must set.
"""

import http
import logging

import csp.constants
import csp.middleware
import csp.utils
from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.db import OperationalError
from django.http import JsonResponse
from django.shortcuts import render
from django.template.response import TemplateResponse

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
# How long a client should wait before retrying after a lock timeout: about one lock wait.
BUSY_RETRY_AFTER_SECONDS = 5
# Error codes for responses that Django, not DRF, made under /api/ (bad Host, CSRF, 404s).
_CODES = {
    400: "bad_request",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    429: "throttled",
    500: "server_error",
    503: "unavailable",
}
# Headers of the replaced response a client still needs.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Vary")
# PostgreSQL: lock_not_available (lock_timeout), serialization_failure, deadlock_detected.
_BUSY_SQLSTATES = {"55P03", "40001", "40P01"}


def client_address(request) -> str:
    """The client's address as DRF's throttles see it: ``REMOTE_ADDR``, or with
    ``NUM_PROXIES`` = n > 0 the entry our n-th proxy appended to X-Forwarded-For.

    The one rule for API throttles and the login lockout (``AXES_CLIENT_IP_CALLABLE``), so
    a header a client writes itself never names a fresh address.
    """
    from rest_framework.throttling import BaseThrottle

    return BaseThrottle().get_ident(request)


# --- The database was too busy ---------------------------------------------------------


def is_database_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is a lock wait that timed out (SQLite's "database is locked",
    PostgreSQL's lock_timeout), a serialization failure or a deadlock: worth a retry."""
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) in _BUSY_SQLSTATES:
        return True
    message = str(exc).lower()
    return "database is locked" in message or "database table is locked" in message


class DatabaseBusyMiddleware:
    """A view that timed out waiting for a database lock answers 503 with Retry-After
    (a small HTML page; under /api/ DRF's exception handler gives the JSON one)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exc):
        if not is_database_busy(exc):
            return None
        logger.warning("database busy on %s %s: %s", request.method, request.path, exc)
        if request.path.startswith(API_PREFIX):
            response = _api_error(503, "database_busy", BUSY_MESSAGE)
        else:
            response = render(request, "503.html", {"message": BUSY_MESSAGE}, status=503)
        response["Retry-After"] = str(BUSY_RETRY_AFTER_SECONDS)
        return response


BUSY_MESSAGE = "The site is busy writing other changes; please try again in a few seconds."


# --- Nothing under /api/ is HTML -------------------------------------------------------


def _api_error(status_code: int, code: str, message: str) -> JsonResponse:
    from recsite.api.errors import error_body

    return JsonResponse(
        error_body(status_code=status_code, code=code, message=message), status=status_code
    )


class ApiJsonErrorsMiddleware:
    """Turn any error response under /api/ that is not JSON into the API's error shape.

    DRF's views already answer in it; this catches what Django answers before or around
    them: a bad Host header (400), CSRF failures of non-DRF views (403), unknown paths
    outside /api/v1/ (404), the technical 404/500 pages DEBUG shows. Listed first in
    MIDDLEWARE so it sees every response.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not request.path.startswith(API_PREFIX)
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        status_code = response.status_code
        try:
            phrase = http.HTTPStatus(status_code).phrase
        except ValueError:
            phrase = "Error"
        replaced = _api_error(status_code, _CODES.get(status_code, "error"), f"{phrase}.")
        for header in _KEPT_HEADERS:
            if header in response:
                replaced[header] = response[header]
        return replaced


# --- Content-Security-Policy, built once ----------------------------------------------

# What a view sets on its response to change the policy (django-csp's decorators).
_CSP_PER_VIEW = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
)


class CSPMiddleware(csp.middleware.CSPMiddleware):
    """django-csp's middleware, with the header built once for the settings in force.

    django-csp builds both headers from the settings on every response (two
    ``dataclasses.asdict`` and ``build_policy`` calls: ~0.07 ms, about a tenth of an API
    request's own work). A response that no view changed (``csp_update`` and the other
    decorators) and whose page used no nonce gets the same strings every time: they are
    kept here, keyed by the settings objects themselves (``override_settings`` replaces
    them). Any other response goes through django-csp's own code.
    tests/security/test_headers.py checks the headers against django-csp's.
    """

    _built: tuple | None = None  # (policy setting, report-only setting, header, report-only)

    def process_response(self, request, response):
        if getattr(request, "_csp_nonce", None) is not None or any(
            hasattr(response, name) for name in _CSP_PER_VIEW
        ):
            return super().process_response(request, response)
        if response.status_code in (500, 404) and settings.DEBUG:
            return response  # as django-csp: leave the debug pages alone
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", None)
        report_only = getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
        built = self._built
        if built is None or built[0] is not policy or built[1] is not report_only:
            built = self._built = (
                policy,
                report_only,
                csp.utils.build_policy(),
                csp.utils.build_policy(report_only=True),
            )
        for header, value, exempt, config in (
            (csp.constants.HEADER, built[2], "_csp_exempt", policy),
            (csp.constants.HEADER_REPORT_ONLY, built[3], "_csp_exempt_ro", report_only),
        ):
            excluded = tuple((config or {}).get("EXCLUDE_URL_PREFIXES", None) or ())
            if (
                value
                and header not in response
                and getattr(response, exempt, False) is False
                and not request.path_info.startswith(excluded)
            ):
                response[header] = value
        # As django-csp: a nonce asked for after the header is written is an error.
        request.csp_nonce = csp.middleware.CheckableLazyObject(self._csp_nonce_post_response)
        return response


# --- Login lockout (django-axes) -------------------------------------------------------


def lockout_message() -> str:
    minutes = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    return (
        "Too many failed sign-in attempts for this account or from your network. "
        f"Sign-in is locked for {minutes} minutes; staff can unlock it sooner."
    )


def lockout_username(request, credentials) -> str | None:
    """The account an attempt counts against: the name as the username rule normalises
    it, lower-cased, so "Demo" and "ＤＥＭＯ" are the same account's failures."""
    from accounts.usernames import normalize

    name = (credentials or {}).get("username")
    if name is None:
        name = request.POST.get("username")
    return normalize(name).lower() if isinstance(name, str) else None


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' check, for logins that come with a request (every login a client can
    make: the login pages, the API's token). ``authenticate()`` without one comes from
    code (a test's ``client.login``, a shell), where there is no client to count."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def lockout_response(request, original_response=None, credentials=None):
    """What a locked-out sign-in gets (``AXES_LOCKOUT_CALLABLE``): status 429 and
    Retry-After; under /api/ the JSON error, elsewhere the login page it came from with
    the lockout as the form's error (the admin's login keeps its own template)."""
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    context = getattr(original_response, "context_data", None) or {}
    form = context.get("form")
    if request.path.startswith(API_PREFIX) or form is None:
        response = _api_error(429, "locked_out", lockout_message())
    else:
        form.errors.clear()
        form.add_error(None, lockout_message())
        response = TemplateResponse(
            request, original_response.template_name, context, status=429
        ).render()
    response["Retry-After"] = retry_after
    return response
