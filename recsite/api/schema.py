"""drf-spectacular's generator, plus the error responses each operation can give."""

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse
from rest_framework.permissions import AllowAny

from recsite.api.errors import ErrorSerializer

ERROR_DESCRIPTIONS = {
    "400": "Invalid input: `error.fields` names each bad field or parameter and why "
    "(codes such as required, invalid, out_of_range, does_not_exist, invalid_choice); "
    "`parse_error` for a body that is not JSON.",
    "401": "Not signed in (`not_authenticated`), or a bad token (`authentication_failed`). "
    "Send `Authorization: Token <token>` or use the site's session.",
    "403": "Signed in but not allowed (`permission_denied`): staff only, or a session "
    "request without its CSRF token.",
    "404": "No such object, or a page past the last one (`not_found`).",
    "413": "The request body is larger than the server accepts (`too_large`).",
    "415": "The body is not `application/json` (`unsupported_media_type`).",
    "429": "Too many requests (`throttled`), or sign-in locked after repeated failures "
    "(`locked_out`, token requests); the `Retry-After` header says when to retry.",
    "503": "The database was busy with other writes (`database_busy`); retry after the "
    "`Retry-After` header's seconds.",
}


class AutoSchema(openapi.AutoSchema):
    def _error_codes(self) -> list[str]:
        codes = ["401", "429"]  # any request may carry a bad token; any may be throttled
        restricted = any(not isinstance(p, AllowAny) for p in self.view.get_permissions())
        if restricted or self.method not in ("GET", "HEAD", "OPTIONS"):
            codes.append("403")  # permission, or a session request without its CSRF token
        has_params = bool(self.get_override_parameters()) or self._is_list_view()
        if self.method in ("POST", "PUT", "PATCH") or has_params or self._get_paginator():
            codes.append("400")
        if self.method in ("POST", "PUT", "PATCH"):
            codes += ["413", "415"]
        if self.method not in ("GET", "HEAD", "OPTIONS"):
            codes.append("503")  # a write that timed out waiting for a database lock
        if "{" in self.path or self._get_paginator():
            codes.append("404")
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                response = OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
                responses[code] = self._get_response_for_code(response, code)
        return dict(sorted(responses.items()))
