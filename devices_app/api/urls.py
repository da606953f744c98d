from django.urls import path

from devices_app.api import devauth_views as views
from devices_app.api import inventory_views

device_urlpatterns = [
    path("v1/authentication/auth_requests", views.AuthRequestView.as_view()),
    path("v1/flotilla/ping", views.DevicePingView.as_view()),
    path(
        "v1/inventory/device/attributes",
        inventory_views.DeviceInventoryAttributesView.as_view(),
    ),
]

management_urlpatterns = [
    path("v2/devauth/devices", views.DeviceListView.as_view()),
    path("v2/devauth/devices/count", views.DeviceCountView.as_view()),
    path("v2/devauth/devices/search", views.DeviceSearchView.as_view()),
    path("v2/devauth/devices/<uuid:device_id>", views.DeviceDetailView.as_view()),
    path(
        "v2/devauth/devices/<uuid:device_id>/auth/<uuid:auth_set_id>",
        views.AuthSetDetailView.as_view(),
    ),
    path(
        "v2/devauth/devices/<uuid:device_id>/auth/<uuid:auth_set_id>/status",
        views.AuthSetStatusView.as_view(),
    ),
    path("v2/devauth/tokens/<uuid:token_id>", views.TokenDetailView.as_view()),
    path("v2/devauth/limits/max_devices", views.DeviceLimitView.as_view()),
    # inventory v1
    path("v1/inventory/devices", inventory_views.InventoryDeviceListView.as_view()),
    path(
        "v1/inventory/devices/<uuid:device_id>",
        inventory_views.InventoryDeviceDetailView.as_view(),
    ),
    path(
        "v1/inventory/devices/<uuid:device_id>/tags",
        inventory_views.DeviceTagsView.as_view(),
    ),
    path(
        "v1/inventory/devices/<uuid:device_id>/group",
        inventory_views.DeviceGroupView.as_view(),
    ),
    path(
        "v1/inventory/devices/<uuid:device_id>/group/<str:group_name>",
        inventory_views.DeviceGroupMembershipView.as_view(),
    ),
    path("v1/inventory/groups", inventory_views.GroupListView.as_view()),
    path(
        "v1/inventory/groups/<str:group_name>",
        inventory_views.GroupDetailView.as_view(),
    ),
    path(
        "v1/inventory/groups/<str:group_name>/devices",
        inventory_views.GroupDevicesView.as_view(),
    ),
    # inventory v2: search and saved filters (dynamic groups)
    path(
        "v2/inventory/filters/attributes",
        inventory_views.FilterAttributesView.as_view(),
    ),
    path("v2/inventory/filters/search", inventory_views.DeviceSearchView.as_view()),
    path("v2/inventory/filters", inventory_views.DeviceFilterListView.as_view()),
    path(
        "v2/inventory/filters/<uuid:filter_id>",
        inventory_views.DeviceFilterDetailView.as_view(),
    ),
    path(
        "v2/inventory/filters/<uuid:filter_id>/search",
        inventory_views.DeviceFilterSearchView.as_view(),
    ),
]
