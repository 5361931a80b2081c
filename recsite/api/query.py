"""Query parameters validated by one serializer instance per class, made once.

A DRF serializer deep-copies its declared fields every time one is made: about half of the
0.2 ms it took to check ``?limit=10`` on every call. Query serializers keep no state while
validating (``run_validation`` returns the values or raises; only ``is_valid`` stores
anything on the instance), so one instance per class validates every request.
tests/api/test_query.py checks the answers and errors against a fresh serializer's.

The answers to queries no method of the serializer's own looks at (no ``validate`` and
no ``validate_<name>`` for a parameter given, as ``genre``'s, which reads the database)
depend on the values alone, so the last ones are remembered: most requests send the same
few (``?limit=10``), and DRF's validation was still ~15 us of them. Errors are not
remembered (they raise again).
"""

from functools import cache, lru_cache

from rest_framework import serializers


def validated_query(serializer_class, request) -> dict:
    """Validated query parameters; ``?limit=`` is an invalid limit, not "use the default"."""
    # A plain dict: a QueryDict would make DRF read empty values as "not given".
    return validate_query(serializer_class, dict(request.query_params.items()))


def validate_query(serializer_class, data: dict) -> dict:
    """The validated values, or ``rest_framework.exceptions.ValidationError``."""
    if serializer_class.validate is serializers.Serializer.validate and not any(
        hasattr(serializer_class, f"validate_{name}") for name in data
    ):
        return dict(_remembered(serializer_class, tuple(sorted(data.items()))))
    return dict(_shared(serializer_class).run_validation(data))


@lru_cache(maxsize=1024)  # bounded: the values are the client's
def _remembered(serializer_class, items: tuple) -> dict:
    return dict(_shared(serializer_class).run_validation(dict(items)))


@cache
def _shared(serializer_class):
    return serializer_class()
