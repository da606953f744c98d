from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from config.admin_errors import ServiceModelAdmin, domain_error_message
from devices_app import dispatch, selectors
from devices_app.exceptions import InvalidFilter
from devices_app.filtering import check_patterns_in_database, parse_terms
from devices_app.models import (
    AuthSet,
    Device,
    DeviceFilter,
    FilterMembership,
    GroupMembership,
)
from devices_app.services import devauth
from devices_app.services import filters as filter_services
from devices_app.services.groups import add_devices_to_group
from devices_app.states import AuthSetStatus

MEMBER_LIST_LIMIT = 100
LIST_FILTER_CHOICES_LIMIT = 100


class AuthSetInline(admin.TabularInline):
    model = AuthSet
    extra = 0
    can_delete = False
    _columns = ("id", "status", "ts", "pubkey")
    fields = _columns
    readonly_fields = _columns

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False


class GroupMembershipInline(admin.TabularInline):
    model = GroupMembership
    extra = 0
    can_delete = False
    _columns = ("group_name", "added_ts", "removed_ts")
    fields = _columns
    readonly_fields = _columns
    ordering = ["-added_ts"]
    verbose_name_plural = "static group history"

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False


def _newest_auth_set(device: Device, *statuses: str) -> AuthSet | None:
    return device.auth_sets.filter(status__in=statuses).order_by("-ts").first()


def _pretty_json(value: Any) -> str:
    return format_html(
        "<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    )


class GroupListFilter(admin.SimpleListFilter):
    title = "static group"
    parameter_name = "group"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        names = (
            Device.objects.filter(group_name__isnull=False)
            .order_by("group_name")
            .values_list("group_name", flat=True)
            .distinct()[:LIST_FILTER_CHOICES_LIMIT]
        )
        return [("-", "(no group)")] + [(name, name) for name in names if name]

    def queryset(self, request: Any, queryset: QuerySet[Device]) -> QuerySet[Device]:
        if self.value() == "-":
            return queryset.filter(group_name__isnull=True)
        if self.value():
            return queryset.filter(group_name=self.value())
        return queryset


class DeviceTypeListFilter(admin.SimpleListFilter):
    title = "device type"
    parameter_name = "device_type"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        types = (
            Device.objects.annotate(
                device_type=KeyTextTransform("device_type", "inventory")
            )
            .filter(device_type__isnull=False)
            .order_by("device_type")
            .values_list("device_type", flat=True)
            .distinct()[:LIST_FILTER_CHOICES_LIMIT]
        )
        return [(name, name) for name in types]

    def queryset(self, request: Any, queryset: QuerySet[Device]) -> QuerySet[Device]:
        if self.value():
            # Containment (@>) so the inventory GIN index serves it.
            return queryset.filter(inventory__contains={"device_type": self.value()})
        return queryset


class DeviceActionForm(ActionForm):
    group_name = forms.CharField(
        required=False, label="Group (for “Add to group”)", max_length=1024
    )


@admin.register(Device)
class DeviceAdmin(ServiceModelAdmin):
    list_display = [
        "id",
        "identity_data",
        "status",
        "group_name",
        "device_type",
        "created_ts",
        "updated_ts",
    ]
    list_filter = ["status", GroupListFilter, DeviceTypeListFilter]
    search_fields = ["id", "identity_data"]
    readonly_fields = [
        "id",
        "identity_data",
        "identity_hash",
        "status",
        "created_ts",
        "updated_ts",
        "check_in_time",
        "group_name",
        "inventory_attributes",
        "tag_attributes",
        "tags_etag",
        "saved_filters",
    ]
    exclude = ["inventory", "tags"]
    inlines = [AuthSetInline, GroupMembershipInline]
    action_form = DeviceActionForm
    actions = [
        "accept_devices",
        "reject_devices",
        "decommission_devices",
        "add_to_group",
    ]

    def has_add_permission(self, request: Any) -> bool:
        return False

    @admin.display(description="device type")
    def device_type(self, device: Device) -> str:
        value = (device.inventory or {}).get("device_type", "")
        return value if isinstance(value, str) else json.dumps(value)

    @admin.display(description="inventory")
    def inventory_attributes(self, device: Device) -> str:
        return _pretty_json(device.inventory)

    @admin.display(description="tags")
    def tag_attributes(self, device: Device) -> str:
        return _pretty_json(device.tags)

    @admin.display(description="matching saved filters")
    def saved_filters(self, device: Device) -> str:
        filters = DeviceFilter.objects.filter(memberships__device=device).order_by(
            "name"
        )
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            (
                (reverse("admin:devices_app_devicefilter_change", args=[f.pk]), f.name)
                for f in filters
            ),
        )

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
            with domain_error_message(self, request, prefix=f"{device.id}: "):
                devauth.set_auth_set_status(
                    device_id=device.id, auth_set_id=auth_set.id, to=to
                )
                changed += 1
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
        decommissioned = 0
        for device in queryset:
            with domain_error_message(self, request, prefix=f"{device.id}: "):
                devauth.decommission_device(device_id=device.id)
                decommissioned += 1
        self.message_user(request, f"{decommissioned} device(s) decommissioned.")

    @admin.action(description="Add to group (name in the Group field)")
    def add_to_group(self, request: Any, queryset: QuerySet[Device]) -> None:
        group_name = request.POST.get("group_name", "")
        with domain_error_message(self, request) as outcome:
            result = add_devices_to_group(
                group_name=group_name,
                device_ids=list(queryset.values_list("pk", flat=True)),
            )
        if outcome.failed:
            return
        skipped = queryset.count() - result.matched_count
        note = f" ({skipped} not accepted, skipped)" if skipped else ""
        self.message_user(
            request,
            f"{result.updated_count} device(s) moved to group {group_name!r}{note}.",
        )


@admin.register(GroupMembership)
class GroupMembershipAdmin(admin.ModelAdmin):
    """Static groups: who is in which group, and since/until when."""

    list_display = ["group_name", "device", "added_ts", "removed_ts", "is_current"]
    list_filter = [("removed_ts", admin.EmptyFieldListFilter), "group_name"]
    search_fields = ["group_name", "device__id"]
    list_select_related = ["device"]
    ordering = ["group_name", "-added_ts"]

    @admin.display(boolean=True, description="current")
    def is_current(self, membership: GroupMembership) -> bool:
        return membership.is_open

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


class DeviceFilterForm(forms.ModelForm):
    terms = forms.JSONField(
        help_text='A list of {"scope", "attribute", "type", "value"} terms, AND-ed.'
    )

    class Meta:
        model = DeviceFilter
        fields = ["name", "terms"]

    def clean_terms(self) -> Any:
        terms = self.cleaned_data["terms"]
        try:
            check_patterns_in_database(parse_terms(terms))
        except InvalidFilter as exc:
            raise ValidationError(exc.message) from None
        return terms


@admin.register(DeviceFilter)
class DeviceFilterAdmin(ServiceModelAdmin):
    """Saved filters (dynamic groups) with their live, worker-maintained membership."""

    form = DeviceFilterForm
    list_display = ["name", "member_count", "evaluated_ts", "created_ts"]
    search_fields = ["name"]
    readonly_fields = ["id", "member_count", "evaluated_ts", "members"]
    actions = ["reevaluate"]

    def get_queryset(self, request: Any) -> QuerySet[DeviceFilter]:
        counts = (
            FilterMembership.objects.filter(device_filter=OuterRef("pk"))
            .order_by()
            .values("device_filter")
            .annotate(count=Count("device"))
            .values("count")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                members_total=Subquery(counts, output_field=IntegerField()),
            )
        )

    @admin.display(description="members", ordering="members_total")
    def member_count(self, device_filter: DeviceFilter) -> int:
        total = getattr(device_filter, "members_total", None)
        if total is None and device_filter.pk is not None:
            total = selectors.filter_member_count(filter_id=device_filter.pk)
        return total or 0

    @admin.display(description=f"member list (first {MEMBER_LIST_LIMIT})")
    def members(self, device_filter: DeviceFilter) -> str:
        if device_filter.pk is None:
            return "-"
        devices = selectors.list_filter_members(filter_id=device_filter.pk)[
            :MEMBER_LIST_LIMIT
        ]
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                '<li><a href="{}">{}</a> {}</li>',
                (
                    (
                        reverse("admin:devices_app_device_change", args=[d.pk]),
                        d.pk,
                        json.dumps(d.identity_data),
                    )
                    for d in devices
                ),
            ),
        )

    def save_model(
        self, request: Any, obj: DeviceFilter, form: Any, change: bool
    ) -> None:
        if change:
            saved = filter_services.update_device_filter(
                filter_id=obj.pk, name=obj.name, terms=obj.terms
            )
        else:
            saved = filter_services.create_device_filter(name=obj.name, terms=obj.terms)
        obj.pk, obj.terms, obj.evaluated_ts = saved.pk, saved.terms, saved.evaluated_ts

    def delete_model(self, request: Any, obj: DeviceFilter) -> None:
        filter_services.delete_device_filter(filter_id=obj.pk)

    def delete_queryset(self, request: Any, queryset: QuerySet[DeviceFilter]) -> None:
        for filter_id in queryset.values_list("pk", flat=True):
            filter_services.delete_device_filter(filter_id=filter_id)

    def get_deleted_objects(self, objs: Any, request: Any) -> tuple[Any, ...]:
        # The default would load every membership row (possibly 100k) to list it.
        objs = list(objs)
        return [str(obj) for obj in objs], {"saved filters": len(objs)}, set(), []

    @admin.action(description="Re-evaluate the membership now")
    def reevaluate(self, request: Any, queryset: QuerySet[DeviceFilter]) -> None:
        for filter_id in queryset.values_list("pk", flat=True):
            dispatch.evaluate_device_filter_on_commit(filter_id)
        self.message_user(request, f"{queryset.count()} filter(s) queued.")
