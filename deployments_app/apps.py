from django.apps import AppConfig


class DeploymentsAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "deployments_app"
    verbose_name = "Deployments"

    def ready(self) -> None:
        # Imported here: services import models, which may only load once the app registry is ready.
        from deployments_app.services.device_lifecycle import (
            decommission_device_deployments,
        )
        from devices_app.hooks import register_decommission_hook  # same reason

        register_decommission_hook(decommission_device_deployments)
