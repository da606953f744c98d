"""Admin for deployments: progress, per-device statuses and logs, create and abort via the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html

from config.admin_errors import ServiceModelAdmin, domain_error_message
from config.errors import DomainError
from deployments_app.models import (
    Artifact,
    Deployment,
    DeploymentPhase,
    DeviceDeployment,
)
from deployments_app.selectors import deployments as deployment_selectors
from deployments_app.services import creation, logs, transitions
from deployments_app.services.creation import PhaseRequest
from deployments_app.states import FINAL_STATUSES, DeviceDeploymentStatus
from devices_app.models import DeviceFilter


class DeploymentCreateForm(forms.ModelForm):
    TARGETS = [
        ("devices", "Device list"),
        ("group", "Static group"),
        ("all", "All accepted devices"),
        ("filter", "Dynamic group (saved filter)"),
    ]

    release = forms.ChoiceField(choices=())
    target = forms.ChoiceField(choices=TARGETS)
    devices = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="Device ids, one per line.",
    )
    group = forms.CharField(required=False)
    device_filter = forms.ModelChoiceField(
        queryset=DeviceFilter.objects.order_by("name"), required=False
    )
    max_devices = forms.IntegerField(
        min_value=0,
        required=False,
        help_text="Dynamic groups only: stop after this many devices finished.",
    )
    phases = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text=(
            "Optional phased rollout, one phase per line: 'PERCENT START' with START in ISO 8601 "
            "(the first phase may omit START: now; the last may omit PERCENT: the rest). "
            "Example: '10' then '40 2030-01-02T00:00:00Z' then 'rest 2030-01-03T00:00:00Z'."
        ),
    )
    force_installation = forms.BooleanField(required=False)
    retries = forms.IntegerField(min_value=0, initial=0)

    class Meta:
        model = Deployment
        fields = ["name"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = (
            Artifact.objects.order_by("name").values_list("name", flat=True).distinct()
        )
        release = self.fields["release"]
        assert isinstance(release, forms.ChoiceField)  # declared on this form
        release.choices = [(name, name) for name in names]

    def clean_phases(self) -> list[PhaseRequest]:
        phases = []
        for number, line in enumerate(
            self.cleaned_data["phases"].splitlines(), start=1
        ):
            words = line.split()
            if not words:
                continue
            percent, start = words[0], words[1] if len(words) > 1 else None
            try:
                batch_size = None if percent == "rest" else int(percent)
                start_ts = parse_datetime(start) if start else None
            except ValueError:
                raise forms.ValidationError(
                    f"phase {number}: cannot read {line!r}"
                ) from None
            if start and start_ts is None:
                raise forms.ValidationError(
                    f"phase {number}: {start!r} is not an ISO 8601 time"
                )
            phases.append(PhaseRequest(batch_size=batch_size, start_ts=start_ts))
        return phases

    def service_arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        arguments: dict[str, Any] = {
            "name": data["name"],
            "artifact_name": data["release"],
            "force_installation": data["force_installation"],
            "retries": data["retries"],
            "phases": data["phases"],
        }
        if data["target"] == "devices":
            arguments["devices"] = [
                line.strip() for line in data["devices"].splitlines() if line.strip()
            ]
        elif data["target"] == "group":
            arguments["group"] = data["group"].strip()
        elif data["target"] == "filter":
            if data["device_filter"] is None:
                raise DomainError("choose the saved filter of the dynamic group")
            arguments["filter_id"] = data["device_filter"].pk
            arguments["max_devices"] = data["max_devices"]
        else:
            arguments["all_devices"] = True
        return arguments


class PhaseInline(admin.TabularInline):
    model = DeploymentPhase
    extra = 0
    can_delete = False
    _columns = (
        "number",
        "batch_size",
        "start_ts",
        "capacity",
        "device_count",
        "started_at",
        "progress",
    )
    fields = _columns
    readonly_fields = _columns

    @admin.display(description="Admitted / capacity")
    def progress(self, phase: DeploymentPhase) -> str:
        capacity = "unbounded" if phase.capacity is None else phase.capacity
        return f"{phase.device_count} / {capacity}"

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False


class DeviceDeploymentInline(admin.TabularInline):
    model = DeviceDeployment
    extra = 0
    can_delete = False
    _columns = (
        "device",
        "status",
        "substate",
        "attempts",
        "started",
        "finished",
        "has_log",
    )
    fields = _columns
    readonly_fields = _columns
    show_change_link = True
    max_num = 0

    def get_queryset(self, request: Any) -> QuerySet[DeviceDeployment]:
        return super().get_queryset(request).order_by("status", "device_id")


@admin.register(Deployment)
class DeploymentAdmin(ServiceModelAdmin):
    not_saved_prefix = "Deployment not created: "
    list_display = [
        "name",
        "artifact_name",
        "status",
        "target_kind",
        "created",
        "progress",
    ]
    list_filter = ["status", "target_kind"]
    search_fields = ["name", "artifact_name"]
    actions = ["abort_deployments"]
    inlines = [PhaseInline, DeviceDeploymentInline]
    readonly_fields = [
        "id",
        "name",
        "artifact_name",
        "status",
        "created",
        "finished",
        "target_kind",
        "group_name",
        "max_devices",
        "device_count",
        "retries",
        "force_installation",
        "expanded_at",
        "statistics",
    ]
    exclude = [
        "device_list",
        "artifacts",
        "constructor_checksum",
        "expansion_cursor",
        "filter_snapshot",
    ]

    def get_queryset(self, request: Any) -> QuerySet[Deployment]:
        final = Q(device_deployments__status__in=FINAL_STATUSES)
        return (
            super()
            .get_queryset(request)
            .annotate(
                total_count=Count("device_deployments"),
                final_count=Count("device_deployments", filter=final),
                success_count=Count(
                    "device_deployments",
                    filter=Q(device_deployments__status=DeviceDeploymentStatus.SUCCESS),
                ),
                failure_count=Count(
                    "device_deployments",
                    filter=Q(device_deployments__status=DeviceDeploymentStatus.FAILURE),
                ),
            )
        )

    @admin.display(description="Progress")
    def progress(self, deployment: Deployment) -> str:
        # Annotated by get_queryset.
        counts: dict[str, int] = {
            name: getattr(deployment, f"{name}_count") or 0
            for name in ("total", "final", "success", "failure")
        }
        total = counts["total"]
        percent = round(100 * counts["final"] / total) if total else 0
        return format_html(
            '<div style="width:120px;background:#ddd"><div style="width:{}%;background:#417690;height:8px">'
            "</div></div>{}/{} finished, {} success, {} failure",
            percent,
            counts["final"],
            total,
            counts["success"],
            counts["failure"],
        )

    @admin.display(description="Statistics")
    def statistics(self, deployment: Deployment) -> dict[str, Any]:
        return deployment_selectors.deployment_statistics(
            deployment_ids=[deployment.pk]
        )[str(deployment.pk)]

    def get_form(
        self, request: Any, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = DeploymentCreateForm
            kwargs["fields"] = [
                "name",
                "release",
                "target",
                "devices",
                "group",
                "device_filter",
                "max_devices",
                "phases",
                "force_installation",
                "retries",
            ]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: Any, obj: Any = None) -> list[str]:
        return self.readonly_fields if obj is not None else []

    def get_inlines(self, request: Any, obj: Any = None) -> list[Any]:
        return self.inlines if obj is not None else []

    def save_model(
        self, request: Any, obj: Deployment, form: Any, change: bool
    ) -> None:
        if change:
            return
        created = creation.create_deployment(
            **form.service_arguments(), created_by=request.user
        )
        obj.pk = created.pk
        obj.__dict__.update(
            {k: v for k, v in created.__dict__.items() if not k.startswith("_")}
        )

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    @admin.action(description="Abort selected deployments")
    def abort_deployments(self, request: Any, queryset: QuerySet[Deployment]) -> None:
        aborted = 0
        for deployment in queryset:
            with domain_error_message(
                self, request, prefix=f"{deployment.name}: ", level=messages.WARNING
            ):
                transitions.abort_deployment(deployment_id=deployment.pk)
                aborted += 1
        self.message_user(request, f"{aborted} deployment(s) aborted.")


@admin.register(DeviceDeployment)
class DeviceDeploymentAdmin(admin.ModelAdmin):
    list_display = ["device", "deployment", "status", "attempts", "started", "finished"]
    list_filter = ["status"]
    search_fields = ["device__id", "deployment__name"]
    readonly_fields = [
        "deployment",
        "device",
        "status",
        "substate",
        "created",
        "admitted_at",
        "started",
        "finished",
        "attempts",
        "artifact",
        "request",
        "log_text",
    ]
    exclude = ["image", "phase", "deleted", "artifact_size", "has_log"]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    @admin.display(description="Log")
    def log_text(self, record: DeviceDeployment) -> str:
        log = getattr(record, "log", None)
        if log is None:
            return "-"
        return format_html("<pre>{}</pre>", logs.format_log(log.messages))
