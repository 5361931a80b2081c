"""``json_response`` answers with the bytes and headers DRF's ``Response`` gives."""

import pytest
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from recsite.api.responses import json_response

BODY = {
    "source": "personal",
    "model_version": None,
    "note": "Ünïcode « » and a line\u2028separator\u2029",
    "pending": False,
    "results": [{"item": {"id": 7, "title": '<b>"x"</b>', "year": None}, "score": 0.1 + 0.2}],
}


class _Drf(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = []

    def get(self, request):
        return Response(BODY)


class _Hand(_Drf):
    def get(self, request):
        return json_response(request, BODY)


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/json; indent=4"])
def test_json_response_equals_drfs_response(accept):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    factory = APIRequestFactory()
    drf = _Drf.as_view()(factory.get("/x/", **headers))
    drf.render()
    hand = _Hand.as_view()(factory.get("/x/", **headers))
    assert hand.content == drf.content
    assert hand["Content-Type"] == drf["Content-Type"] == "application/json"
    assert hand.status_code == drf.status_code == 200
    assert hand["Allow"] == drf["Allow"]
    assert hand.get("Vary") == drf.get("Vary")


def test_an_unacceptable_accept_header_is_still_drfs_406():
    """Content negotiation still runs before the view."""
    response = _Hand.as_view()(APIRequestFactory().get("/x/", HTTP_ACCEPT="text/html"))
    assert response.status_code == 406
