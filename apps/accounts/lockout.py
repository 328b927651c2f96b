"""The admin's sign-in lockout: django-axes' hooks, named in settings (AXES_*).

Axes counts refused sign-ins per username and client IP together and, past
FLOWSITE_LOGIN_FAILURE_LIMIT, refuses that pair before any password is checked. The
refusal is the login page with the one message every refused sign-in gets (see
admin_site.REFUSED), answered 429 with Retry-After.
"""

import ipaddress

from axes.helpers import get_cool_off
from django.http import HttpResponse

from apps.accounts.admin_site import REFUSED
from apps.core import throttling


def client_ip(request) -> str | None:
    """The client IP as every other limit reads it (FLOWSITE_TRUSTED_PROXIES), or None.

    Axes stores it in an address column: a value that is not an address (possible only
    when the proxy count is set higher than the real chain) is None, never an error.
    """
    address = throttling.client_ip(request)
    try:
        return str(ipaddress.ip_address(address or ""))
    except ValueError:
        return None


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """The login page as the refused form left it, only with 429 and Retry-After."""
    if isinstance(original_response, HttpResponse):
        response = original_response
    else:  # axes' async path passes no response
        response = HttpResponse(REFUSED % {"username": "username"}, content_type="text/plain")
    response.status_code = 429
    # An upper bound: the lockout runs from the last counted failure.
    response["Retry-After"] = str(int(get_cool_off(request).total_seconds()))
    return response
