from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Management users' tokens, profile data and login lockouts (Mender useradm)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "config.accounts"
    label = "accounts"
    verbose_name = "Accounts"
