"""The Django admin login with the same throttles and lockouts as the useradm login."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from config.accounts.exceptions import LoginThrottled
from config.accounts.services import logins
from config.ratelimits import client_address


@never_cache
@csrf_protect
def throttled_admin_login(request: HttpRequest) -> HttpResponse:
    """``admin.site.login``, counted per address, overall and (failures) per account; 429 when over."""
    if request.method != "POST" or request.user.is_authenticated:
        return admin.site.login(request)
    login = request.POST.get("username", "")
    try:
        logins.check_login_allowed(login=login, address=client_address(request))
    except LoginThrottled as exc:
        response = HttpResponse(
            f"{exc.message} (retry in {exc.retry_after} s)\n",
            status=429,
            content_type="text/plain; charset=utf-8",
        )
        response["Retry-After"] = str(exc.retry_after)
        return response
    response = admin.site.login(request)
    if not request.user.is_authenticated:
        logins.record_login_failure(login=login)
    return response
