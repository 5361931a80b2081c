from django import forms
from django.contrib.auth import authenticate


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
