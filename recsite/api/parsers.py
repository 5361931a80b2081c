"""JSON parsing that turns every malformed body into a 400, never a 500."""

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:  # "[[[[...]]]]" nested deeper than Python's stack
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None
