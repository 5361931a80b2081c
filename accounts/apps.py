from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """The username rule every path that makes users follows (``accounts.usernames``) and
    the database index that backs it."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"
