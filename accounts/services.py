"""Creating users with roles and issuing or revoking tokens."""

from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ROLE_RANK, TOKEN_PREFIX, ApiToken, AuditKind, Membership, Role, hash_token
from core.errors import ApplicationError

# Kubernetes names (RFC 1123 labels for namespaces; cluster names are ScaleDeck's own, same shape).
_SCOPE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
MAX_TOKEN_DAYS = 3650


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


def scope_names(values, what: str, field: str) -> list[str]:
    """Cluster or namespace names of a scope (a token's, a Slack link's), sorted, each checked."""
    names = sorted({v.strip() for v in values or [] if v and v.strip()})
    for name in names:
        if not _SCOPE_NAME.match(name):
            raise ApplicationError(f'"{name}" is not a {what} name: lowercase letters, digits, - and .', field=field)
    return names


def _token_fields(token: ApiToken) -> dict:
    return {
        "name": token.name,
        "user": token.user.get_username(),
        "role": token.role,
        "prefix": token.prefix,
        "clusters": token.clusters,
        "namespaces": token.namespaces,
        "read_only": token.read_only,
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


@transaction.atomic
def api_token_create(
    *,
    user,
    name: str,
    role: str,
    namespaces=(),
    clusters=(),
    expires_days: int | None = -1,
    read_only: bool = False,
    actor=None,
    now=None,
) -> tuple[ApiToken, str]:
    """Issue a token; returns the row and the raw token, which is never stored or shown again.

    `expires_days`: -1 (the default) takes SCALEDECK_TOKEN_DEFAULT_DAYS, None means never. Empty
    `namespaces`/`clusters` leave the token unscoped within its role. `actor` (default: the owner)
    is who issued it, for the audit."""
    if role not in Role.values:
        raise ApplicationError(f"unknown role {role!r}: use viewer, operator or admin", field="role")
    owner_role = user_role(user)
    if owner_role is None or ROLE_RANK[Role(role)] > ROLE_RANK[Role(owner_role)]:
        raise ApplicationError(f"a token cannot have more rights than its user ({owner_role})", field="role")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ApplicationError("a token needs a name of 1 to 100 characters, e.g. slack-bot", field="name")
    if expires_days == -1:
        expires_days = settings.SCALEDECK_TOKEN_DEFAULT_DAYS
    if expires_days is not None and not (isinstance(expires_days, int) and 1 <= expires_days <= MAX_TOKEN_DAYS):
        raise ApplicationError(f"a token lasts 1 to {MAX_TOKEN_DAYS} days (or never)", field="expires_days")
    now = now or timezone.now()
    raw = ApiToken.generate()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        role=role,
        prefix=raw[:12],
        token_hash=hash_token(raw),
        created_at=now,
        expires_at=now + timedelta(days=expires_days) if expires_days is not None else None,
        namespaces=scope_names(namespaces, "namespace", "namespaces"),
        clusters=scope_names(clusters, "cluster", "clusters"),
        read_only=bool(read_only),
    )
    audit_record(
        actor=actor or user,
        kind=AuditKind.TOKEN,
        object=f"token {token.prefix}… ({name})",
        object_id=token.pk,
        before=None,
        after=_token_fields(token),
        reason="token issued",
    )
    return token, raw


def api_token_revoke(*, token: ApiToken, actor=None, reason: str = "") -> bool:
    """Revoke a token now; True if this call revoked it, False if it already was."""
    with transaction.atomic():
        before = _token_fields(token)
        revoked = ApiToken.objects.filter(id=token.id, revoked_at__isnull=True).update(
            revoked_at=timezone.now(),
            revoked_by=actor if getattr(actor, "pk", None) and not isinstance(actor, ApiToken) else None,
        )
        if revoked:
            token.refresh_from_db()
            audit_record(
                actor=actor,
                kind=AuditKind.TOKEN,
                object=f"token {token.prefix}… ({token.name})",
                object_id=token.pk,
                before=before,
                after=_token_fields(token),
                reason=reason or "token revoked",
            )
    return bool(revoked)


def api_token_find(ref: str) -> ApiToken:
    """The token a person names: the full token, its id, or the prefix shown in lists (with or without '…')."""
    ref = (ref or "").strip().rstrip("…").rstrip(".")
    qs = ApiToken.objects.select_related("user")
    if ref.isdigit():
        token = qs.filter(pk=int(ref)).first()
    elif ref.startswith(TOKEN_PREFIX) and len(ref) > 12:
        token = qs.filter(token_hash=hash_token(ref)).first()
    elif ref.startswith(TOKEN_PREFIX):
        matches = list(qs.filter(prefix__startswith=ref)[:2])
        if len(matches) > 1:
            raise ApplicationError(f"more than one token starts with {ref}: give its id instead", field="token")
        token = matches[0] if matches else None
    else:
        token = None
    if token is None:
        raise ApplicationError(
            "no token matches: give the full token, its id, or the prefix shown in lists", field="token", status=404
        )
    return token
