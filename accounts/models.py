from django.conf import settings
from django.db import models


class GenrePick(models.Model):
    """A genre a person said they like (at sign-up or on their profile).

    Before someone has rated enough items for suggestions from people with their taste,
    their picks give them a first list (``recommendations.cold_start``). A pick is their
    own statement, never shown to anyone else.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="genre_picks"
    )
    genre = models.ForeignKey("catalog.Genre", on_delete=models.CASCADE, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "genre"], name="one_pick_per_user_genre")
        ]

    def __str__(self) -> str:
        return f"{self.user} likes {self.genre}"
