"""The token lookup of ``me/recommendations/``, which also reads the user's taste stamp.

A stored list is served when the stamp it was kept with is the user's stamp now
(``reads.recommendations_for_user``). Reading the stamp in the token's statement saves
the request one statement. Read before the list, it is never newer than what the request
then serves; a rating saved between the two makes the list look stale, never fresh (the
live computation answers, as it would a moment later).
"""

from drf_spectacular.drainage import set_override

from catalog import selectors as catalog_selectors
from recsite.api.authentication import TokenAuthentication


class TokenWithTasteStamp(TokenAuthentication):
    """``TokenAuthentication`` whose token carries ``taste_stamp``, the user's
    ``catalog.selectors.user_taste_stamp`` read in the same statement."""

    extra_columns = staticmethod(catalog_selectors.taste_stamp_columns)

    def extra_found(self, token, values) -> None:
        token.taste_stamp = catalog_selectors.taste_stamp(values)


# The same scheme as the site's token (the same header, the same "tokenAuth" in the
# schema): tell the schema generator the two classes under one name are no mistake.
set_override(TokenWithTasteStamp, "suppress_collision_warning", True)


def taste_stamp_of(request) -> str | None:
    """The stamp read with the request's token, or None (a session, or another token class)."""
    return getattr(request.auth, "taste_stamp", None)
