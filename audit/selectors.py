"""The one audit list: ScaleDeck's own audit entries, the cluster writes and the SLO changes, newest first.

Read from three places (accounts' AuditEntry rows, scaling's ScaleActions, fleet's SloChanges), so it
sits above all three apps; the writer, `accounts.audit.audit_record`, stays with the entries.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.urls import reverse

from accounts.models import ApiToken, AuditEntry, AuditKind
from accounts.scope import scope_queryset
from fleet.models import SloChange
from scaling.models import ScaleAction


@dataclass(frozen=True)
class AuditFilter:
    """What the list is narrowed to; every field optional. `kinds` and `actors` match any of theirs."""

    kinds: tuple[str, ...] = ()
    actors: tuple[str, ...] = ()
    object: str = ""
    since: datetime | None = None
    until: datetime | None = None
    # A scoped token reads only the cluster writes and SLO changes inside its scope; ScaleDeck's
    # own settings (tokens, receivers, policies) belong to no namespace, so it reads none of them.
    token: ApiToken | None = None


def _window(qs, field: str, f: AuditFilter):
    if f.since:
        qs = qs.filter(**{f"{field}__gte": f.since})
    if f.until:
        qs = qs.filter(**{f"{field}__lt": f.until})
    return qs


def _entries(f: AuditFilter):
    kinds = set(f.kinds) - {AuditKind.SCALE_ACTION}  # scale actions are ScaleAction rows only
    if (f.kinds and not kinds) or (f.token is not None and f.token.scoped):
        return None
    qs = AuditEntry.objects.order_by("-at", "-id")
    if f.kinds:
        qs = qs.filter(kind__in=kinds)
    if f.actors:
        qs = qs.filter(actor_label__in=f.actors)
    if f.object:
        qs = qs.filter(object_label__icontains=f.object)
    return _window(qs, "at", f)


def _actions(f: AuditFilter):
    ops = []
    if not f.kinds or AuditKind.SCALE_ACTION in f.kinds:
        ops += [ScaleAction.Operation.SCALE, ScaleAction.Operation.RESTORE]
    if not f.kinds or AuditKind.QUOTA in f.kinds:
        ops.append(ScaleAction.Operation.QUOTA)
    if not f.kinds or AuditKind.AUTOSCALER_POLICY in f.kinds:
        ops.append(ScaleAction.Operation.POLICY)
    if not ops:
        return None
    qs = (
        ScaleAction.objects.filter(operation__in=ops)
        .select_related("cluster", "actor_user", "actor_token")
        .order_by("-created_at", "-id")
    )
    if f.actors:
        qs = qs.filter(
            Q(actor_token__name__in=f.actors)
            | Q(actor_token__isnull=True, actor_user__username__in=f.actors)
            | Q(actor_label__in=f.actors)
        )
    if f.object:
        qs = qs.filter(
            Q(target_name__icontains=f.object) | Q(namespace__icontains=f.object) | Q(cluster__name__icontains=f.object)
        )
    return _window(scope_queryset(qs, f.token), "created_at", f)


def _slo_changes(f: AuditFilter):
    if f.kinds and AuditKind.SLO not in f.kinds:
        return None
    qs = scope_queryset(SloChange.objects.select_related("deployment__cluster").order_by("-at", "-id"), f.token)
    if f.actors:
        qs = qs.filter(actor_label__in=f.actors)
    if f.object:
        qs = qs.filter(Q(deployment__name__icontains=f.object) | Q(deployment__namespace__icontains=f.object))
    return _window(qs, "at", f)


def _entry_row(e: AuditEntry) -> dict:
    return {
        "id": f"entry-{e.pk}",
        "at": e.at,
        "actor": e.actor_label,
        "kind": e.kind,
        "object": e.object_label,
        "before": e.before,
        "after": e.after,
        "reason": e.reason,
        "action_url": None,
    }


_ACTION_KINDS = {
    ScaleAction.Operation.QUOTA: AuditKind.QUOTA,
    ScaleAction.Operation.POLICY: AuditKind.AUTOSCALER_POLICY,
}


def _action_row(a: ScaleAction) -> dict:
    if a.actor_token_id:
        actor = a.actor_token.name
    elif a.actor_user_id:
        actor = a.actor_user.get_username()
    else:
        actor = a.actor_label
    kind = _ACTION_KINDS.get(a.operation, AuditKind.SCALE_ACTION)
    return {
        "id": f"action-{a.pk}",
        "at": a.created_at,
        "actor": actor,
        "kind": kind.value,
        "object": f"{a.cluster.name}/{a.namespace}/{a.target_name}",
        "before": a.before,
        "after": a.after,
        "reason": a.reason,
        "action_url": reverse("scaling:action", args=[a.pk]),
    }


def _slo_row(s: SloChange) -> dict:
    d = s.deployment
    return {
        "id": f"slo-{s.pk}",
        "at": s.at,
        "actor": s.actor_label,
        "kind": AuditKind.SLO.value,
        "object": f"{d.cluster.name}/{d.namespace}/{d.name}",
        "before": {"ttft_p95_seconds": s.before_seconds},
        "after": {"ttft_p95_seconds": s.after_seconds},
        "reason": s.reason,
        "action_url": None,
    }


def audit_rows(*, f: AuditFilter, offset: int = 0, limit: int = 100) -> tuple[int, list[dict]]:
    """(total, one page of rows newest first) across the audit entries, ScaleActions and SloChanges.

    Each source is read only up to `offset + limit` rows, then merged by time: the page costs three
    queries plus three counts, however many rows there are."""
    sources = [(_entries(f), _entry_row), (_actions(f), _action_row), (_slo_changes(f), _slo_row)]
    sources = [(qs, row) for qs, row in sources if qs is not None]
    total = sum(qs.count() for qs, _ in sources)
    streams = [[row(obj) for obj in qs[: offset + limit]] for qs, row in sources]
    merged = heapq.merge(*streams, key=lambda r: r["at"], reverse=True)
    page = []
    for i, r in enumerate(merged):
        if i >= offset + limit:
            break
        if i >= offset:
            page.append(r)
    return total, page


def _shown(value) -> str:
    if value is None or value == [] or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_shown(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_shown(v)}" for k, v in value.items())
    return str(value)


def readable_lines(values: dict | None) -> list[str]:
    """A before or after as the audit page shows it: "min replicas: 4", "acknowledged: yes"."""
    if not isinstance(values, dict):
        return []
    return [f"{str(key).replace('_', ' ')}: {_shown(value)}" for key, value in values.items()]


def page_row(row: dict) -> dict:
    """An `audit_rows` row with what the page shows in words: the kind's name, before and after as lines."""
    kind = AuditKind(row["kind"])
    return {**row, "kind_label": kind.label, "before_lines": readable_lines(row["before"]),
            "after_lines": readable_lines(row["after"])}  # fmt: skip
