from django.apps import AppConfig


class DevicesAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "devices_app"
    verbose_name = "Devices"
