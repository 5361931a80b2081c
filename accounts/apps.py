from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """People's own accounts: the username rule every path that makes users follows
    (``accounts.usernames``) and the index that backs it; profile, data export, deletion."""

    name = "accounts"
    verbose_name = "Accounts"
    default_auto_field = "django.db.models.BigAutoField"
