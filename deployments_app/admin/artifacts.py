"""Admin for releases and artifacts; uploads, edits and deletes go through the artifact services."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from config.admin_errors import ServiceModelAdmin, domain_error_message
from config.errors import DomainError
from deployments_app.models import Artifact, Release
from deployments_app.services import artifacts as artifact_services

_UPLOAD_TEMPLATE = """{% extends "admin/base_site.html" %}
{% load admin_urls %}
{% block breadcrumbs %}<div class="breadcrumbs">
<a href="{% url 'admin:index' %}">Home</a>
&rsaquo; <a href="{% url 'admin:app_list' app_label=opts.app_label %}">{{ opts.app_config.verbose_name }}</a>
&rsaquo; <a href="{% url opts|admin_urlname:'changelist' %}">{{ opts.verbose_name_plural|capfirst }}</a>
&rsaquo; Upload</div>{% endblock %}
{% block content %}<div id="content-main">
<p>Upload a <code>.mender</code> file made by <code>mender-artifact</code>. It is parsed and verified
before anything is stored.</p>
<form method="post" enctype="multipart/form-data" novalidate>{% csrf_token %}
{{ form.non_field_errors }}
<fieldset class="module aligned">{% for field in form %}
<div class="form-row">{{ field.errors }}{{ field.label_tag }} {{ field }}
{% if field.help_text %}<div class="help">{{ field.help_text }}</div>{% endif %}</div>
{% endfor %}</fieldset>
<div class="submit-row"><input type="submit" value="Upload" class="default"></div>
</form></div>{% endblock %}
"""


class ArtifactUploadForm(forms.Form):
    artifact = forms.FileField(
        help_text="A Mender artifact (.mender), format version 2 or 3."
    )
    description = forms.CharField(
        required=False,
        max_length=artifact_services.MAX_DESCRIPTION_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _pretty_json(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


class ArtifactInline(admin.TabularInline):
    model = Artifact
    extra = 0
    can_delete = False
    show_change_link = True
    _columns = (
        "id",
        "device_types",
        "signed",
        "size_display",
        "description",
        "modified",
    )
    fields = _columns
    readonly_fields = _columns

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="device types")
    def device_types(self, artifact: Artifact) -> str:
        return ", ".join(artifact.device_types_compatible)

    @admin.display(description="size")
    def size_display(self, artifact: Artifact) -> str:
        return _human_size(artifact.size)


@admin.register(Release)
class ReleaseAdmin(ServiceModelAdmin):
    list_display = ["name", "artifacts_count", "device_types", "tags", "modified"]
    search_fields = ["name", "notes"]
    readonly_fields = ["name", "modified", "tags"]
    fields = ["name", "notes", "tags", "modified"]
    inlines = [ArtifactInline]
    ordering = ["name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Release]:
        return (
            super()
            .get_queryset(request)
            .annotate(artifacts_total=Count("artifacts"))
            .prefetch_related("artifacts")
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a release appears with its first artifact

    @admin.display(description="artifacts", ordering="artifacts_total")
    def artifacts_count(self, release: Release) -> int:
        return release.artifacts_total  # type: ignore[attr-defined]

    @admin.display(description="device types")
    def device_types(self, release: Release) -> str:
        types = sorted(
            {t for a in release.artifacts.all() for t in a.device_types_compatible}
        )
        return ", ".join(types)

    def save_model(
        self, request: HttpRequest, obj: Release, form: Any, change: bool
    ) -> None:
        if change and "notes" in form.changed_data:
            artifact_services.update_release_notes(name=obj.name, notes=obj.notes)

    def delete_model(self, request: HttpRequest, obj: Release) -> None:
        self._delete(request, [obj.name])

    def delete_queryset(
        self, request: HttpRequest, queryset: QuerySet[Release]
    ) -> None:
        self._delete(request, list(queryset.values_list("name", flat=True)))

    def _delete(self, request: HttpRequest, names: list[str]) -> None:
        with domain_error_message(self, request):
            artifact_services.delete_releases(names=names)


@admin.register(Artifact)
class ArtifactAdmin(ServiceModelAdmin):
    list_display = [
        "name",
        "device_types",
        "update_types",
        "signed",
        "size_display",
        "modified",
        "id",
    ]
    list_filter = ["signed", "info_version"]
    search_fields = ["name", "description", "id"]
    ordering = ["name", "-modified"]
    _columns = (
        "id",
        "name",
        "release",
        "description",
        "device_types",
        "info",
        "signed",
        "size_display",
        "modified",
        "provides_display",
        "depends_display",
        "clears",
        "updates_display",
        "file",
    )
    fields = _columns
    readonly_fields = [f for f in _columns if f != "description"]

    @admin.display(description="device types")
    def device_types(self, artifact: Artifact) -> str:
        return ", ".join(artifact.device_types_compatible)

    @admin.display(description="update types")
    def update_types(self, artifact: Artifact) -> str:
        return ", ".join(
            str((u.get("type_info") or {}).get("type")) for u in artifact.updates or []
        )

    @admin.display(description="size", ordering="size")
    def size_display(self, artifact: Artifact) -> str:
        return f"{_human_size(artifact.size)} ({artifact.size} bytes)"

    @admin.display(description="format")
    def info(self, artifact: Artifact) -> str:
        return f"{artifact.info_format} v{artifact.info_version}"

    @admin.display(description="provides")
    def provides_display(self, artifact: Artifact) -> str:
        return _pretty_json(artifact.provides)

    @admin.display(description="depends")
    def depends_display(self, artifact: Artifact) -> str:
        return _pretty_json(artifact.depends)

    @admin.display(description="payloads")
    def updates_display(self, artifact: Artifact) -> str:
        rows = [
            (
                (update.get("type_info") or {}).get("type"),
                f["name"],
                f["size"],
                f["checksum"],
            )
            for update in artifact.updates or []
            for f in update.get("files") or []
        ]
        return (
            format_html_join("\n", "<div>{}: {} ({} bytes, sha256 {})</div>", rows)
            or "-"
        )

    # ---- writes go through the services

    def add_view(
        self,
        request: HttpRequest,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """Upload form: the same parse-verify-store service as the API (not a ModelForm save)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ArtifactUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                artifact = artifact_services.upload_artifact(
                    file=form.cleaned_data["artifact"],
                    description=form.cleaned_data["description"],
                )
            except DomainError as exc:
                form.add_error("artifact", exc.message)
            else:
                self.log_addition(request, artifact, [{"added": {}}])
                self.message_user(
                    request, f"Artifact “{artifact.name}” uploaded.", messages.SUCCESS
                )
                return HttpResponseRedirect(
                    reverse("admin:deployments_app_artifact_change", args=[artifact.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload artifact",
            "opts": self.model._meta,
            "form": form,
            **(extra_context or {}),
        }
        template = engines["django"].from_string(_UPLOAD_TEMPLATE)
        return TemplateResponse(request, template, context)

    def save_model(
        self, request: HttpRequest, obj: Artifact, form: Any, change: bool
    ) -> None:
        if change and "description" in form.changed_data:
            artifact_services.update_artifact_description(
                artifact_id=obj.pk, description=obj.description
            )

    def delete_model(self, request: HttpRequest, obj: Artifact) -> None:
        self._delete(request, [obj])

    def delete_queryset(
        self, request: HttpRequest, queryset: QuerySet[Artifact]
    ) -> None:
        self._delete(request, list(queryset))

    def _delete(self, request: HttpRequest, artifacts: list[Artifact]) -> None:
        for artifact in artifacts:
            with domain_error_message(self, request, prefix=f"{artifact.name}: "):
                artifact_services.delete_artifact(artifact_id=artifact.pk)
