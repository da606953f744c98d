"""Admin of the deployments app: one module per subdomain, registered when Django autodiscovers this package."""

from deployments_app.admin import artifacts, deployments

__all__ = ["artifacts", "deployments"]
