from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import ValidationError

from accounts import usernames
from accounts.forms import genre_picks_field
from accounts.services import genre_picks_set
from catalog.selectors import ITEM_ORDERINGS
from catalog.services import parse_score

SCORE_ERROR = "Choose a score from 0.5 to 5 in steps of 0.5."


class RatingForm(forms.Form):
    """One score; "4", "4.0" and "4.5" are all fine (the stars post "4.0")."""

    score = forms.CharField(max_length=10, error_messages={"required": SCORE_ERROR})

    def clean_score(self):
        try:
            return parse_score(self.cleaned_data["score"].strip())
        except ValidationError:
            raise ValidationError(SCORE_ERROR, code="invalid_choice") from None


class ItemFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search titles")
    genre = forms.SlugField(required=False)
    sort = forms.ChoiceField(
        required=False,
        choices=[
            ("relevance", "Best match"),
            ("-count", "Most rated"),
            ("-average", "Highest average"),
            ("title", "Title A–Z"),
            ("-year", "Newest"),
            ("year", "Oldest"),
        ],
    )

    def clean_sort(self):
        # No choice: best match for a search, else most rated (the selector decides).
        sort = self.cleaned_data.get("sort") or "relevance"
        return sort if sort in ITEM_ORDERINGS else "relevance"


# Sort keys for "My ratings": the URL value, its label and the selector's ordering.
MY_RATINGS_SORTS = {
    "-updated": ("Most recent first", "-updated"),
    "updated": ("Oldest first", "updated"),
    "-score": ("Highest score first", "-score"),
    "score": ("Lowest score first", "score"),
    "title": ("Title A–Z", "item__title"),
}


class MyRatingsForm(forms.Form):
    sort = forms.ChoiceField(
        required=False,
        choices=[(key, label) for key, (label, _) in MY_RATINGS_SORTS.items()],
        # static/js/filters.js submits the form when it changes.
        widget=forms.Select(attrs={"data-autosubmit": ""}),
    )

    def clean_sort(self):
        return self.cleaned_data.get("sort") or "-updated"


# The id of the error summary templates/registration/_form.html shows above a form.
FORM_ERRORS_ID = "form-errors"


class SignUpForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")
        help_texts = {"email": "Optional; only used to send a link if you forget your password."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Optional genre picks: a first list of suggestions before any rating.
        self.fields["genres"] = genre_picks_field()

    def save(self, commit=True):
        user = super().save(commit=commit)
        if commit:
            genre_picks_set(user=user, genres=self.cleaned_data.get("genres") or [])
        return user

    def clean_username(self):
        # The same rule as the API's register and the importer (accounts.usernames).
        return usernames.validate_new(self.cleaned_data["username"])

    def validate_password_for_user(self, user, password_field_name="password1"):
        # Django files "too short" and "too common" under the confirmation field; they are
        # about the password itself, so they go under it.
        super().validate_password_for_user(user, password_field_name=password_field_name)


class LoginForm(AuthenticationForm):
    """Log-in whose one error ("enter a correct username and password") is about both
    fields: each is marked invalid and described by the message, for screen readers."""

    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            for name in ("username", "password"):
                self.fields[name].widget.attrs.update(
                    {"aria-invalid": "true", "aria-describedby": FORM_ERRORS_ID}
                )
            raise
