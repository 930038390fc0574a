"""Role checks for HTML views."""

from __future__ import annotations

from functools import wraps

from django.core.exceptions import PermissionDenied

from accounts.models import role_at_least
from accounts.services import user_role


def role_required(role: str):
    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not role_at_least(user_role(request.user), role):
                raise PermissionDenied(f"This needs the {role} role.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
