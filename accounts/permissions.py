"""Role checks for the API: reads need viewer, writes need what the view declares."""

from __future__ import annotations

from rest_framework import permissions

from accounts.models import ApiToken, Role, role_at_least
from accounts.scope import SCOPE_REFUSED, request_token, scope_allows
from accounts.services import user_role


def request_role(request) -> str | None:
    """The effective role: a token's own role (never above its user's), else the user's."""
    role = user_role(request.user)
    if isinstance(request.auth, ApiToken) and role is not None:
        return request.auth.role if role_at_least(role, request.auth.role) else role
    return role


class RoleRequired(permissions.BasePermission):
    """Viewer for safe methods; the view's `write_role` (default operator) for the rest.

    A read-only token is refused every write, and a scoped token every write to an object outside
    its clusters and namespaces (accounts/scope.py)."""

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        if request.method in permissions.SAFE_METHODS:
            needed = getattr(view, "read_role", Role.VIEWER)
        else:
            needed = getattr(view, "write_role", Role.OPERATOR)
            token = request_token(request)
            if token is not None and token.read_only:
                self.message = "This token is read-only: it cannot change anything."
                return False
        return role_at_least(request_role(request), needed)

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in permissions.SAFE_METHODS or scope_allows(request_token(request), obj):
            return True
        self.message = SCOPE_REFUSED
        return False
