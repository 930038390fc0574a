"""API rate limits: writes per token and per user, scale requests apart, a generous read rate.

Rates are read from settings on every check (not frozen at import like DRF's own), so an operator
changes them with the environment and a test with `settings`. Counters live in Django's cache
(Redis in production, so every web worker shares them). A refusal is DRF's 429 with Retry-After.

- `TokenWriteThrottle` / `UserWriteThrottle`: SCALEDECK_THROTTLE_WRITE (default 120/min) on every
  write, counted per token and per user (all of a user's tokens and their browser session together).
- `ScaleThrottle`: SCALEDECK_THROTTLE_SCALE (default 30/min) on views that say `throttle_scope =
  "scale"` (scale requests), per token, else per user.
- `ReadThrottle`: SCALEDECK_THROTTLE_READ (default 1200/min) on reads, per token, else per user.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import permissions, throttling

from accounts.scope import request_token


class _RateFromSettings(throttling.SimpleRateThrottle):
    setting = ""
    scope = ""

    def get_rate(self):
        return getattr(settings, self.setting)

    def applies(self, request, view) -> bool:
        return request.method not in permissions.SAFE_METHODS

    def ident(self, request) -> str | None:
        token = request_token(request)
        if token is not None:
            return f"token:{token.pk}"
        if request.user and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return None  # anonymous requests are refused before throttling (401)

    def get_cache_key(self, request, view):
        ident = self.ident(request) if self.applies(request, view) else None
        return None if ident is None else self.cache_format % {"scope": self.scope, "ident": ident}


class TokenWriteThrottle(_RateFromSettings):
    scope, setting = "write", "SCALEDECK_THROTTLE_WRITE"

    def ident(self, request):
        token = request_token(request)
        return f"token:{token.pk}" if token is not None else None


class UserWriteThrottle(_RateFromSettings):
    scope, setting = "write", "SCALEDECK_THROTTLE_WRITE"

    def ident(self, request):
        return f"user:{request.user.pk}" if request.user and request.user.is_authenticated else None


class ScaleThrottle(_RateFromSettings):
    scope, setting = "scale", "SCALEDECK_THROTTLE_SCALE"

    def applies(self, request, view):
        return super().applies(request, view) and getattr(view, "throttle_scope", None) == "scale"


class ReadThrottle(_RateFromSettings):
    scope, setting = "read", "SCALEDECK_THROTTLE_READ"

    def applies(self, request, view):
        return request.method in permissions.SAFE_METHODS
