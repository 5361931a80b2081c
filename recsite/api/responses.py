"""A JSON answer rendered in the view: DRF's bytes, without DRF's ``Response``.

A ``Response`` is a template response: the view returns it unrendered, DRF attaches the
renderer and a renderer context (the view, its arguments, the request), and Django renders
it after the view. For the hottest read endpoints, whose bodies are plain dicts already
(the hand-written ``to_representation``s), that machinery is the only DRF work left after
the view. ``json_response`` renders the body at once with the renderer DRF's content
negotiation picked for this request (so ``Accept: application/json; indent=4`` still
indents), into a plain ``HttpResponse`` with the same content type. DRF's view still adds
its headers (``Allow``) and still turns exceptions into the API's error shape.
tests/api/test_json_response.py checks the bytes and headers against a ``Response``'s.

``json_text_response`` answers with JSON text the view wrote itself (the hottest read,
``me/recommendations/``, writes its list from pre-encoded parts), for requests where
``writes_plain_json`` says DRF's renderer would write exactly that text: compact, UTF-8,
no indent.
"""

from django.http import HttpResponse
from rest_framework.renderers import JSONRenderer


def json_response(request, data, *, status: int = 200) -> HttpResponse:
    """``data`` rendered as DRF's negotiated renderer renders it, as an ``HttpResponse``."""
    renderer = request.accepted_renderer
    body = renderer.render(data, request.accepted_media_type, {})
    return HttpResponse(body, status=status, content_type=_content_type(renderer))


def _content_type(renderer) -> str:
    # As Response.rendered_content: the renderer's own media type, not the accepted one.
    content_type = renderer.media_type
    if renderer.charset is not None:
        content_type = f"{content_type}; charset={renderer.charset}"
    return content_type


def writes_plain_json(request) -> bool:
    """Whether the renderer negotiated for ``request`` writes compact JSON with
    ``json.dumps(ensure_ascii=False, allow_nan=False, separators=(",", ":"))`` (DRF's
    ``JSONRenderer`` under the default UNICODE_JSON, COMPACT_JSON and STRICT_JSON, and
    no ``indent`` asked for in the Accept header): the text ``json_text_response`` sends."""
    renderer = request.accepted_renderer
    if type(renderer) is not JSONRenderer:
        return False
    if renderer.ensure_ascii or not renderer.compact or not renderer.strict:
        return False
    media_type = request.accepted_media_type
    # Parameters ("; indent=4") are rare; without them there is no indent to look for.
    return ";" not in media_type or renderer.get_indent(media_type, {}) is None


def json_text_response(request, text: str, *, status: int = 200) -> HttpResponse:
    """JSON ``text`` (what ``json.dumps`` gives, as ``writes_plain_json`` describes) sent
    as DRF's ``JSONRenderer`` sends it: U+2028 and U+2029 escaped, UTF-8."""
    body = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()
    return HttpResponse(body, status=status, content_type=_content_type(request.accepted_renderer))
