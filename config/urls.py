from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from config.api.schema_view import SchemaView
from config.api.useradm import CurrentUserView, LoginView
from deployments_app.api import deployment_urls
from deployments_app.api import urls as deployments_urls
from devices_app.api import urls as devices_urls


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


management_urlpatterns = [
    path("v1/useradm/auth/login", LoginView.as_view()),
    path("v1/useradm/users/me", CurrentUserView.as_view()),
    *devices_urls.management_urlpatterns,
    *deployments_urls.management_urlpatterns,
    *deployment_urls.management_urlpatterns,
]
device_urlpatterns = [
    *devices_urls.device_urlpatterns,
    *deployments_urls.device_urlpatterns,
    *deployment_urls.device_urlpatterns,
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz),
    path("api/management/", include(management_urlpatterns)),
    path("api/devices/", include(device_urlpatterns)),
    path("api/schema/", SchemaView.as_view()),
]

handler404 = "config.api.errors.json_not_found"
handler500 = "config.api.errors.json_server_error"
