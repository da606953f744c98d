from django.urls import path

from deployments_app.api import deployment_views as views

_DEVICE_DEPLOYMENTS = "deployments/device/deployments"
device_urlpatterns = [
    path(f"v2/{_DEVICE_DEPLOYMENTS}/next", views.NextDeploymentV2View.as_view()),
    path(f"v1/{_DEVICE_DEPLOYMENTS}/next", views.NextDeploymentV1View.as_view()),
    path(
        f"v1/{_DEVICE_DEPLOYMENTS}/<uuid:deployment_id>/status",
        views.DeviceDeploymentStatusView.as_view(),
    ),
    path(
        f"v1/{_DEVICE_DEPLOYMENTS}/<uuid:deployment_id>/log",
        views.DeviceDeploymentLogView.as_view(),
    ),
]

_D = "v1/deployments/deployments"
management_urlpatterns = [
    path(_D, views.DeploymentListView.as_view()),
    path(f"{_D}/group/<str:group_name>", views.GroupDeploymentCreateView.as_view()),
    path(f"{_D}/statistics/list", views.DeploymentStatisticsListView.as_view()),
    path(f"{_D}/devices/<uuid:device_id>", views.DeviceDeploymentHistoryView.as_view()),
    path(
        f"{_D}/devices/<uuid:device_id>/history",
        views.DeviceDeploymentHistoryResetView.as_view(),
    ),
    path(f"{_D}/<uuid:deployment_id>", views.DeploymentDetailView.as_view()),
    path(f"{_D}/<uuid:deployment_id>/status", views.DeploymentStatusView.as_view()),
    path(
        f"{_D}/<uuid:deployment_id>/statistics",
        views.DeploymentStatisticsView.as_view(),
    ),
    path(f"{_D}/<uuid:deployment_id>/devices", views.DeploymentDevicesView.as_view()),
    path(
        f"{_D}/<uuid:deployment_id>/devices/list",
        views.DeploymentDevicesListView.as_view(),
    ),
    path(
        f"{_D}/<uuid:deployment_id>/device_list",
        views.DeploymentDeviceListView.as_view(),
    ),
    path(
        f"{_D}/<uuid:deployment_id>/devices/<uuid:device_id>/log",
        views.DeviceDeploymentLogManagementView.as_view(),
    ),
    path("v2/deployments/deployments", views.DynamicDeploymentCreateView.as_view()),
]
