"""Schemas of the token API's views drf-spectacular cannot read (plain APIViews building their own bodies).

Loaded by accounts/api_urls.py; when a view gains a `serializer_class`, its entry here can go.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension

from accounts.models import ApiToken


class ApiTokenViewSetSchema(OpenApiViewExtension):
    """Its queryset is the caller's own tokens; the schema generator has no caller."""

    target_class = "accounts.api.ApiTokenViewSet"

    def view_replacement(self):
        base = self.target_class

        class Described(base):
            def get_queryset(self):
                if getattr(self, "swagger_fake_view", False):
                    return ApiToken.objects.none()
                return super().get_queryset()

        Described.__name__ = base.__name__
        Described.__doc__ = base.__doc__
        return Described
