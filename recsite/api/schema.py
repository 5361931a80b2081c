from drf_spectacular import openapi
from rest_framework.permissions import AllowAny

from recsite.api.errors import ErrorSerializer


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's generator, plus the error responses each operation can give."""

    def _error_codes(self) -> list[str]:
        codes = ["401", "429"]  # any request may carry a bad token; any may be throttled
        permissions = self.view.get_permissions()
        if any(not isinstance(p, AllowAny) for p in permissions) or self.method not in (
            "GET",
            "HEAD",
            "OPTIONS",
        ):
            codes.append("403")  # permission, or a session request without its CSRF token
        has_params = bool(self.get_override_parameters()) or self._is_list_view()
        if self.method in ("POST", "PUT", "PATCH") or has_params or self._get_paginator():
            codes.append("400")
        if self.method in ("POST", "PUT", "PATCH"):
            codes += ["413", "415"]  # a body over DATA_UPLOAD_MAX_MEMORY_SIZE; not JSON
        if "{" in self.path or self._get_paginator():
            codes.append("404")
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code)
        return dict(sorted(responses.items()))
