"""What every endpoint of the JSON API shares.

``errors`` (the one error shape and the exception handler), ``throttling``,
``pagination``, ``schema`` (drf-spectacular's generator plus documented errors),
``health`` and ``urls`` (everything under /api/). The modules DRF's settings name
(throttling, pagination) import no DRF views: DRF imports them while defining APIView.
"""
