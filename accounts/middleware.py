"""Every page needs a login, except the login page itself, static files and the API (which answers 401)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login

# /chatops/slack/ checks Slack's request signature instead of a login (chatops/views.py).
OPEN_PREFIXES = ("/accounts/login/", "/api/", "/healthz", "/admin/", "/chatops/slack/")


class LoginRequiredEverywhere:
    def __init__(self, get_response):
        self.get_response = get_response
        self.static_prefix = "/" + settings.STATIC_URL.lstrip("/")

    def __call__(self, request):
        path = request.path_info
        if (
            request.user.is_authenticated
            or path.startswith(OPEN_PREFIXES)
            or path.startswith(self.static_prefix)
        ):
            return self.get_response(request)
        return redirect_to_login(request.get_full_path())
