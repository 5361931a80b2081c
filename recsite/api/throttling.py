"""Throttles whose rates are read from ``settings.API_THROTTLE_RATES`` on every request.

DRF's own classes read their rates once, at import; these follow the settings, so a test
(or an operator's environment) can change them.
"""

from django.conf import settings
from rest_framework import throttling


class _RateFromSettings:
    def get_rate(self):
        return settings.API_THROTTLE_RATES.get(self.scope)


class AnonThrottle(_RateFromSettings, throttling.AnonRateThrottle):
    """Anonymous clients, per address (API_THROTTLE_ANON)."""


class UserThrottle(_RateFromSettings, throttling.UserRateThrottle):
    """Signed-in users, per user (API_THROTTLE_USER)."""


class AuthThrottle(_RateFromSettings, throttling.SimpleRateThrottle):
    """Registration and token requests, per client address whoever is signed in."""

    scope = "auth"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
