from django.apps import AppConfig


class DeploymentsAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "deployments_app"
    verbose_name = "Deployments"
