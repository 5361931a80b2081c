"""Throttles whose rates are read from ``settings.API_THROTTLE_RATES`` on every request,
and whose counters live in the ``api-throttle`` cache (Redis), shared by every worker.

DRF's own classes read their rates once, at import, and count in the default cache, which
is per process: with four web workers a client would get four times its budget. When the
throttle cache cannot be reached the request is let through (logged): a Redis outage must
not take the API down with it.
"""

import logging

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends import redis as django_redis
from rest_framework import throttling

logger = logging.getLogger(__name__)

CACHE_ALIAS = "api-throttle"


class _ReusedClient(django_redis.RedisCacheClient):
    """Django's Redis cache client, with one ``redis.Redis`` per connection pool instead
    of a new one on every call. redis-py 8 fills ~170 response callbacks into each new
    ``Redis`` (~0.07 ms of CPU); a throttled API request made two (the history's get and
    set), more than half of what throttling cost a request. A ``Redis`` is safe to share:
    each command takes a connection from the pool."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = self._get_connection_pool(write)
            client = self._clients[index] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    """Django's ``RedisCache`` with ``_ReusedClient``: the ``api-throttle`` cache's backend."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusedClient


class _SharedThrottle:
    @property
    def cache(self):
        return caches[CACHE_ALIAS if CACHE_ALIAS in settings.CACHES else "default"]

    def get_rate(self):
        return settings.API_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        import redis

        try:
            return super().allow_request(request, view)
        except (redis.RedisError, OSError) as error:
            logger.warning("throttle cache unavailable, request let through: %s", error)
            return True


class AnonThrottle(_SharedThrottle, throttling.AnonRateThrottle):
    """Anonymous clients, per address (API_THROTTLE_ANON)."""


class UserThrottle(_SharedThrottle, throttling.UserRateThrottle):
    """Signed-in users, per user (API_THROTTLE_USER)."""


class AuthThrottle(_SharedThrottle, throttling.SimpleRateThrottle):
    """Registration and token requests, per client address whoever is signed in."""

    scope = "auth"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
