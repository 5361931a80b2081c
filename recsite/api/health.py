"""GET /api/v1/health/: database, Redis and model-version state."""

import logging

from django.conf import settings
from django.db import DatabaseError, connection
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

logger = logging.getLogger(__name__)


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["ok", "degraded", "down"],
        help_text="ok: all up; degraded: Redis down (recommendations fall back to popular "
        "lists); down: the database is unreachable (HTTP 503).",
    )
    database = serializers.ChoiceField(choices=["ok", "down"])
    redis = serializers.ChoiceField(choices=["ok", "down"])
    model_version = serializers.CharField(
        allow_null=True, help_text="The recommendation model the site serves; null when none."
    )


_redis_clients: dict[str, object] = {}


def _redis_client():
    import redis

    url = settings.REDIS_URL
    client = _redis_clients.get(url)
    if client is None:
        client = redis.Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25)
        _redis_clients[url] = client
    return client


def _database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return "down"
    return "ok"


def _redis_state() -> str:
    import redis

    try:
        _redis_client().ping()
    except (redis.RedisError, OSError):
        return "down"
    return "ok"


def _model_version() -> str | None:
    """The live model's version from the recommendations pipeline; None when there is none."""
    try:
        from recommendations.reads import model_status
    except ImportError:  # a build without the recommendations pipeline
        return None
    try:
        return model_status().get("model_version")
    except Exception:  # noqa: BLE001 - health must answer whatever the store does
        logger.warning("health: could not read the model version", exc_info=True)
        return None


class HealthView(APIView):
    """Liveness for load balancers and monitoring; the trivial endpoint of the load test."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    @extend_schema(
        operation_id="health",
        summary="Database, Redis and model state",
        description="200 while the database answers, even with Redis down (status "
        "`degraded`, redis `down`: recommendations then come from the popular fallback). "
        "503 when the database is unreachable.",
        responses={200: HealthSerializer, 503: HealthSerializer},
        tags=["health"],
    )
    def get(self, request):
        database = _database_state()
        redis_state = _redis_state()
        model_version = _model_version() if redis_state == "ok" else None
        if database == "down":
            state, code = "down", status.HTTP_503_SERVICE_UNAVAILABLE
        elif redis_state == "down":
            state, code = "degraded", status.HTTP_200_OK
        else:
            state, code = "ok", status.HTTP_200_OK
        body = {
            "status": state,
            "database": database,
            "redis": redis_state,
            "model_version": model_version,
        }
        return Response(body, status=code)
