"""Creating users with roles and issuing or revoking tokens."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.models import ROLE_RANK, ApiToken, Membership, Role, hash_token
from config.errors import ApplicationError


def user_role(user) -> str | None:
    """The role of a logged-in user, or None for anonymous users and users with no role."""
    if not user or not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    membership = getattr(user, "membership", None)
    return membership.role if membership else None


@transaction.atomic
def user_ensure(*, username: str, role: str, password: str | None = None):
    """Create the user if needed and set its role. Returns the user."""
    if role not in Role.values:
        raise ApplicationError(f"unknown role {role!r}: use viewer, operator or admin", field="role")
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=username)
    if password is not None:
        user.set_password(password)
        user.save(update_fields=["password"])
    elif created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    Membership.objects.update_or_create(user=user, defaults={"role": role})
    return user


@transaction.atomic
def api_token_create(*, user, name: str, role: str) -> tuple[ApiToken, str]:
    """Issue a token; returns the row and the raw token, which is never stored or shown again."""
    if role not in Role.values:
        raise ApplicationError(f"unknown role {role!r}: use viewer, operator or admin", field="role")
    owner_role = user_role(user)
    if owner_role is None or ROLE_RANK[Role(role)] > ROLE_RANK[Role(owner_role)]:
        raise ApplicationError(f"a token cannot have more rights than its user ({owner_role})", field="role")
    raw = ApiToken.generate()
    token = ApiToken.objects.create(user=user, name=name, role=role, prefix=raw[:12], token_hash=hash_token(raw))
    return token, raw


def api_token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(id=token.id, revoked_at__isnull=True).update(revoked_at=timezone.now())
