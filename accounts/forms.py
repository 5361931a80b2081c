from django import forms
from django.contrib.auth import authenticate

from accounts.selectors import user_genre_picks
from accounts.services import genre_picks_set
from catalog.models import Genre


class AccountDeleteForm(forms.Form):
    """The last step before an account goes: the password, so a borrowed session cannot."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, user, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.request = request

    def clean_password(self):
        password = self.cleaned_data["password"]
        if authenticate(self.request, username=self.user.get_username(), password=password) is None:
            raise forms.ValidationError("That is not your password.", code="password_incorrect")
        return password


GENRES_HELP = (
    "Optional. Pick a few you like and your first suggestions come from them, before you "
    "have rated anything; change them any time on your profile."
)


def genre_picks_field(**kwargs) -> forms.ModelMultipleChoiceField:
    """The genre checkbox group of the sign-up and profile forms, by slug.

    A group of checkboxes is rendered in a fieldset whose legend is the label
    (``templates/registration/_form.html``), so each box is read with the question.
    """
    return forms.ModelMultipleChoiceField(
        queryset=Genre.objects.order_by("name"),
        to_field_name="slug",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Genres you like",
        help_text=GENRES_HELP,
        error_messages={"invalid_choice": "There is no genre “%(value)s”."},
        **kwargs,
    )


class GenrePicksForm(forms.Form):
    """The genres a person likes: their first suggestions come from these."""

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["genres"] = genre_picks_field(initial=user_genre_picks(user=user))

    def save(self) -> None:
        genre_picks_set(user=self.user, genres=self.cleaned_data["genres"])
