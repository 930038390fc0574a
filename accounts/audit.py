"""The one audit of everything that changes: `audit_record` writes a row (the list is read by `audit`).

Any service that changes one of ScaleDeck's own settings calls, in the same transaction as the change:

    from accounts.audit import audit_record
    audit_record(actor=actor, kind=AuditKind.RECEIVER, object=f"receiver {receiver.name}",
                 object_id=receiver.pk, before=old_fields_or_None, after=new_fields_or_None, reason=reason)

`actor` is whoever acted: a user, an ApiToken (a bot), `scaling.services.Actor` (what the API and
pages build from a request), or a plain label such as "rule:#3". `kind` is an `AuditKind`; `before`
and `after` are JSON-able dicts (None for a creation's before and a deletion's after).

Two kinds of change are not copied here, and the list (audit/selectors.py) reads them where they
already are:
- cluster writes (scale actions, quota changes) stay in ScaleAction, with their Kubernetes answer;
  their rows link to the action;
- TTFT objective changes are SloChange rows (fleet), written by `deployment_slo_set`; the
  attainment target, the other half of an SLO, is an entry (kind `slo`) like any setting.

Receivers (created, edited, deleted) are `receiver` entries; silences and acknowledgements of
alerts are `silence` entries (scaling/alerts).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from accounts.models import ApiToken, AuditEntry, AuditKind


def _actor_of(actor) -> tuple[str, Any]:
    """(label, user) for any of the actor shapes `audit_record` accepts."""
    if actor is None:
        return "system", None
    if isinstance(actor, str):
        return actor[:120], None
    if isinstance(actor, ApiToken):
        return actor.name[:120], actor.user
    if isinstance(actor, get_user_model()):
        return actor.get_username()[:120], actor if actor.pk else None
    # scaling.services.Actor: a bot is named by its token, a person by their username.
    if actor.token is not None:
        return actor.token.name[:120], actor.user
    if actor.user is not None and getattr(actor.user, "pk", None):
        return actor.user.get_username()[:120], actor.user
    return actor.label[:120], None


def audit_record(
    *,
    actor,
    kind: str,
    object: str,
    before: dict | None,
    after: dict | None,  # noqa: A002
    reason: str = "",
    object_id: Any = "",
) -> AuditEntry:
    """Write one audit row: who (`actor`), what (`kind`, `object`), from `before` to `after`, and why."""
    label, user = _actor_of(actor)
    return AuditEntry.objects.create(
        actor_label=label,
        actor_user=user,
        kind=AuditKind(kind),
        object_label=str(object)[:300],
        object_id=str(object_id or "")[:64],
        before=before,
        after=after,
        reason=reason or "",
    )
