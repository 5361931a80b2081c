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
"""

from django.http import HttpResponse


def json_response(request, data, *, status: int = 200) -> HttpResponse:
    """``data`` rendered as DRF's negotiated renderer renders it, as an ``HttpResponse``."""
    renderer = request.accepted_renderer
    body = renderer.render(data, request.accepted_media_type, {})
    # As Response.rendered_content: the renderer's own media type, not the accepted one.
    content_type = renderer.media_type
    if renderer.charset is not None:
        content_type = f"{content_type}; charset={renderer.charset}"
    return HttpResponse(body, status=status, content_type=content_type)
