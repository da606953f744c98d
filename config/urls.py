from django.contrib import admin
from django.urls import include, path

from config.accounts.admin_login import throttled_admin_login
from config.accounts.api import urls as accounts_urls
from config.api.schema_view import SchemaView
from config.health import healthz, readyz
from config.metrics import metrics
from deployments_app.api import artifact_urls, deployment_urls
from devices_app.api import urls as devices_urls

management_urlpatterns = [
    *accounts_urls.management_urlpatterns,
    *devices_urls.management_urlpatterns,
    *artifact_urls.management_urlpatterns,
    *deployment_urls.management_urlpatterns,
]
device_urlpatterns = [
    *devices_urls.device_urlpatterns,
    *artifact_urls.device_urlpatterns,
    *deployment_urls.device_urlpatterns,
]

urlpatterns = [
    path("admin/login/", throttled_admin_login),
    path("admin/", admin.site.urls),
    path("healthz", healthz),
    path("readyz", readyz),
    path("metrics", metrics),
    path("api/management/", include(management_urlpatterns)),
    path("api/devices/", include(device_urlpatterns)),
    path("api/schema/", SchemaView.as_view()),
]

handler404 = "config.api.errors.json_not_found"
handler500 = "config.api.errors.json_server_error"
