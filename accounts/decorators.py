"""Role checks for HTML views."""

from __future__ import annotations

import logging
from functools import wraps

from django.shortcuts import render

from accounts.models import role_at_least
from accounts.services import user_role

logger = logging.getLogger(__name__)


def forbidden(request, *, role_needed: str):
    """The styled 403 page: the nav, the role the page needs and the one the user has.

    Answered here rather than by raising PermissionDenied: Django logs that exception with its
    traceback, and a viewer opening an operator page is not an error worth one."""
    logger.info(
        "forbidden: %s needs the %s role (%s has %s)",
        request.path,
        role_needed,
        request.user.get_username() or "anonymous",
        user_role(request.user) or "no role",
    )
    return render(request, "403.html", {"role_needed": role_needed}, status=403)


def role_required(role: str):
    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not role_at_least(user_role(request.user), role):
                return forbidden(request, role_needed=role)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
