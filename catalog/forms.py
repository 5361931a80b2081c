from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from catalog.models import ALLOWED_SCORES
from catalog.selectors import ITEM_ORDERINGS

SCORE_CHOICES = [(str(score), f"{score:g}") for score in ALLOWED_SCORES]


class RatingForm(forms.Form):
    score = forms.TypedChoiceField(
        choices=SCORE_CHOICES,
        coerce=float,
        error_messages={"invalid_choice": "Choose a score from 0.5 to 5 in steps of 0.5."},
    )


class ItemFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search titles")
    genre = forms.SlugField(required=False)
    sort = forms.ChoiceField(
        required=False,
        choices=[
            ("-count", "Most rated"),
            ("-average", "Highest average"),
            ("title", "Title A–Z"),
            ("-year", "Newest"),
            ("year", "Oldest"),
        ],
    )

    def clean_sort(self):
        sort = self.cleaned_data.get("sort") or "-count"
        return sort if sort in ITEM_ORDERINGS else "-count"


class SignUpForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username",)
