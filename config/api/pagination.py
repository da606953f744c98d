"""Mender-style paging: ``page``/``per_page`` query parameters, ``X-Total-Count`` and ``Link`` headers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload
from urllib.parse import urlencode

from django.db.models import Model, QuerySet

from config.errors import InvalidInput
from config.input_policy import PG_BIGINT_MAX

_M = TypeVar("_M", bound=Model)
_R = TypeVar("_R")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Page:
    number: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page


def _positive_int(params: Any, name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"Can't parse param {name}") from None
    if value < 1:
        raise InvalidInput(f"Param {name} is out of bounds")
    return value


def parse_page(
    params: Any, *, default_per_page: int = 20, max_per_page: int = 500
) -> Page:
    """Read and validate page/per_page (400 on non-integers or out-of-range values)."""
    page = _positive_int(params, "page", 1)
    per_page = _positive_int(params, "per_page", default_per_page)
    if per_page > max_per_page:
        raise InvalidInput("Param per_page is out of bounds")
    # The page's OFFSET and LIMIT must fit PostgreSQL's bigint.
    if page * per_page > PG_BIGINT_MAX:
        raise InvalidInput("Param page is out of bounds")
    return Page(number=page, per_page=per_page)


def paging_headers(request: Any, page: Page, total: int) -> dict[str, str]:
    """X-Total-Count and Link (first, prev, next) for a page of ``total`` results.

    Every link is the request's absolute path with every value of every query parameter
    (``?id=a&id=b`` keeps both), only ``page``/``per_page`` replaced; one ``rel`` per link.
    Mender writes the last path segment only (``<devices?…>``): a client resolves both to the
    same URL.
    """
    params = [
        (key, value)
        for key, values in request.GET.lists()
        if key not in ("page", "per_page")
        for value in values
    ]

    def link(number: int, rel: str) -> str:
        query = urlencode([*params, ("page", number), ("per_page", page.per_page)])
        return f'<{request.path}?{query}>; rel="{rel}"'

    links = [link(1, "first")]
    if page.number > 1:
        links.append(link(page.number - 1, "prev"))
    if page.offset + page.per_page < total:
        links.append(link(page.number + 1, "next"))
    return {"X-Total-Count": str(total), "Link": ", ".join(links)}


@overload
def page_slice(items: QuerySet[_M, _R], page: Page) -> QuerySet[_M, _R]: ...
@overload
def page_slice(items: Sequence[_T], page: Page) -> Sequence[_T]: ...
def page_slice(
    items: QuerySet[_M, _R] | Sequence[_T], page: Page
) -> QuerySet[_M, _R] | Sequence[_T]:
    """The page's part of ``items`` (a queryset stays lazy: LIMIT/OFFSET)."""
    return items[page.offset : page.offset + page.per_page]
