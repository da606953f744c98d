"""The one way the admin reports a refused operation: a DomainError becomes a message, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from config.errors import DomainError


@dataclass
class Outcome:
    failed: bool = False


@contextmanager
def domain_error_message(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    *,
    prefix: str = "",
    level: int = messages.ERROR,
) -> Iterator[Outcome]:
    """Run the block; a DomainError it raises becomes an admin message and ``outcome.failed``."""
    outcome = Outcome()
    try:
        yield outcome
    except DomainError as exc:
        outcome.failed = True
        model_admin.message_user(request, f"{prefix}{exc.message}", level)


class ServiceModelAdmin(admin.ModelAdmin):
    """A ModelAdmin whose saves and deletes call services: a refusal is a message, not a 500.

    Django runs the change form and the delete view in a transaction, which the error has rolled
    back by the time it is caught here; the user is sent back to the same page.
    """

    not_saved_prefix = "Not saved: "

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        with domain_error_message(self, request, prefix=self.not_saved_prefix):
            return super().changeform_view(request, object_id, form_url, extra_context)
        return HttpResponseRedirect(request.get_full_path())

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Admin actions run here.
        with domain_error_message(self, request):
            return super().changelist_view(request, extra_context)
        return HttpResponseRedirect(request.get_full_path())

    def delete_view(
        self,
        request: HttpRequest,
        object_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        with domain_error_message(self, request, prefix="Not deleted: "):
            return super().delete_view(request, object_id, extra_context)
        return HttpResponseRedirect(request.get_full_path())
