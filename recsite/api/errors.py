"""The JSON API's one error shape and the exception handler that produces it.

Every error, whatever raised it, leaves as::

    {"error": {"status": 400, "code": "invalid", "message": "score: A score must be ...",
               "fields": {"score": [{"code": "out_of_range", "message": "A score must be ..."}]}}}

``fields`` is empty unless the request itself was at fault field by field; nested fields
are named with dots (``items.0.score``), errors of the whole body with ``non_field_errors``.
"""

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

logger = logging.getLogger(__name__)


class FieldErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorBodySerializer(serializers.Serializer):
    status = serializers.IntegerField(help_text="The HTTP status, repeated for logs.")
    code = serializers.CharField(
        help_text="Machine-readable: invalid, parse_error, not_authenticated, "
        "authentication_failed, permission_denied, not_found, method_not_allowed, "
        "not_acceptable, too_large, unsupported_media_type, throttled, locked_out, "
        "server_error, database_busy."
    )
    message = serializers.CharField(help_text="One line for people.")
    fields = serializers.DictField(
        child=FieldErrorSerializer(many=True),
        help_text="Per field (dotted path, or non_field_errors): what is wrong with it.",
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


def error_body(*, status_code: int, code: str, message: str, fields=None) -> dict:
    return {
        "error": {"status": status_code, "code": code, "message": message, "fields": fields or {}}
    }


def _flatten(details, prefix: str = "") -> dict[str, list[dict]]:
    """DRF's nested ``get_full_details()`` as {dotted field: [{code, message}]}."""
    if isinstance(details, dict) and set(details) == {"message", "code"}:
        return {prefix or api_settings.NON_FIELD_ERRORS_KEY: [_leaf(details)]}
    out: dict[str, list[dict]] = {}
    if isinstance(details, dict):
        for key, value in details.items():
            for name, errors in _flatten(value, f"{prefix}.{key}" if prefix else str(key)).items():
                out.setdefault(name, []).extend(errors)
    elif isinstance(details, list):
        if all(isinstance(d, dict) and set(d) == {"message", "code"} for d in details):
            key = prefix or api_settings.NON_FIELD_ERRORS_KEY
            out[key] = [_leaf(d) for d in details]
        else:
            for index, value in enumerate(details):
                if value:
                    name = f"{prefix}.{index}" if prefix else str(index)
                    for field, errors in _flatten(value, name).items():
                        out.setdefault(field, []).extend(errors)
    return out


def _leaf(detail: dict) -> dict:
    return {"code": str(detail["code"]), "message": str(detail["message"])}


def _summary(fields: dict[str, list[dict]]) -> str:
    name, errors = next(iter(fields.items()))
    message = errors[0]["message"]
    if name == api_settings.NON_FIELD_ERRORS_KEY:
        return message
    return f"{name}: {message}"


class DatabaseBusy(exceptions.APIException):
    status_code = 503
    default_code = "database_busy"

    def __init__(self):
        from recsite.security import BUSY_MESSAGE, BUSY_RETRY_AFTER_SECONDS

        super().__init__(BUSY_MESSAGE)
        self.wait = BUSY_RETRY_AFTER_SECONDS  # DRF sends it as Retry-After


class LockedOut(exceptions.APIException):
    """Sign-in refused by the lockout (django-axes), whatever the password."""

    status_code = 429
    default_code = "locked_out"

    def __init__(self):
        from django.conf import settings

        from recsite.security import lockout_message

        super().__init__(lockout_message())
        self.wait = int(settings.AXES_COOLOFF_TIME.total_seconds())  # sent as Retry-After


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "too_large"


def exception_handler(exc, context):
    """DRF's handler (status, headers such as Retry-After), then the one error shape."""
    from recsite.security import is_database_busy

    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif is_database_busy(exc):
        logger.warning("database busy in %s: %s", context.get("view"), exc)
        set_rollback()
        exc = DatabaseBusy()
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError(f"Bad request: {exc}")
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        # A bug, not the client's fault; still JSON, and logged with its traceback.
        logger.exception("Unhandled error in %s", context.get("view"), exc_info=exc)
        set_rollback()  # as DRF does for its own errors, under ATOMIC_REQUESTS
        return Response(
            error_body(
                status_code=500, code="server_error", message="Something went wrong on our side."
            ),
            status=500,
        )
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.get_full_details())
        response.data = error_body(
            status_code=response.status_code,
            code="invalid",
            message=_summary(fields) if fields else "Invalid input.",
            fields=fields,
        )
        return response
    if isinstance(exc, exceptions.APIException):
        code = exc.get_codes()
        code = code if isinstance(code, str) else exc.default_code
        message = str(exc.detail)
    elif isinstance(exc, Http404):
        code, message = "not_found", "Not found."
    elif isinstance(exc, PermissionDenied):
        code, message = "permission_denied", "You do not have permission to do this."
    else:  # pragma: no cover - DRF handles only the three families above
        code, message = "error", str(exc)
    response.data = error_body(status_code=response.status_code, code=code, message=message)
    return response


@csrf_exempt  # a JSON 404 for any method; CSRF's HTML 403 must not answer first
def not_found(request, *args, **kwargs):
    """Any unknown path under /api/v1/: the same JSON 404 as a missing object."""
    return JsonResponse(
        error_body(status_code=404, code="not_found", message="No such endpoint."), status=404
    )
