from deployments_app.models.artifacts import *  # noqa: F403
from deployments_app.models.deployments import *  # noqa: F403
