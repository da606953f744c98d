from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet

from config.errors import DomainError
from devices_app.models import AuthSet, Device
from devices_app.services import devauth
from devices_app.states import AuthSetStatus


class AuthSetInline(admin.TabularInline):
    model = AuthSet
    extra = 0
    can_delete = False
    fields = ["id", "status", "ts", "pubkey"]
    readonly_fields = fields

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False


def _newest_auth_set(device: Device, *statuses: str) -> AuthSet | None:
    return device.auth_sets.filter(status__in=statuses).order_by("-ts").first()


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["id", "identity_data", "status", "created_ts", "updated_ts"]
    list_filter = ["status"]
    search_fields = ["id", "identity_data"]
    readonly_fields = [
        "id",
        "identity_data",
        "identity_hash",
        "status",
        "created_ts",
        "updated_ts",
        "check_in_time",
    ]
    inlines = [AuthSetInline]
    actions = ["accept_devices", "reject_devices", "decommission_devices"]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def _decide(
        self,
        request: Any,
        queryset: QuerySet[Device],
        to: str,
        candidates: tuple[str, ...],
    ) -> None:
        changed = 0
        for device in queryset:
            auth_set = _newest_auth_set(device, *candidates)
            if auth_set is None:
                continue
            try:
                devauth.set_auth_set_status(
                    device_id=device.id, auth_set_id=auth_set.id, to=to
                )
                changed += 1
            except DomainError as exc:
                self.message_user(
                    request, f"{device.id}: {exc.message}", messages.ERROR
                )
        self.message_user(request, f"{changed} device(s) {to}.")

    @admin.action(description="Accept the newest pending auth set")
    def accept_devices(self, request: Any, queryset: QuerySet[Device]) -> None:
        self._decide(
            request,
            queryset,
            AuthSetStatus.ACCEPTED,
            (AuthSetStatus.PENDING, AuthSetStatus.REJECTED),
        )

    @admin.action(description="Reject the accepted or pending auth set")
    def reject_devices(self, request: Any, queryset: QuerySet[Device]) -> None:
        self._decide(
            request,
            queryset,
            AuthSetStatus.REJECTED,
            (AuthSetStatus.ACCEPTED, AuthSetStatus.PENDING),
        )

    @admin.action(description="Decommission")
    def decommission_devices(self, request: Any, queryset: QuerySet[Device]) -> None:
        for device in queryset:
            devauth.decommission_device(device_id=device.id)
        self.message_user(request, f"{queryset.count()} device(s) decommissioned.")
