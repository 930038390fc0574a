"""The override stack of one target, read from the audit: what we last wrote, and what is active."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from scaling import decisions
from scaling.models import ScaleAction

# How far back to look for the last value written to each field.
_HISTORY = 50


@dataclass(frozen=True)
class StackInputs:
    last_written: dict
    last_baseline: dict
    active: list[decisions.Override]


def override_wants(action: ScaleAction) -> dict[str, tuple[str, int]]:
    request = action.request or {}
    mode = action.mode or decisions.FLOOR
    return decisions.contributions(
        action.target_kind, mode, int(request.get("replicas", 0)), bool(request.get("raise_max"))
    )


def stack_inputs(
    *, cluster_id: int, namespace: str, target_kind: str, target_name: str, now: datetime, exclude_ids=()
) -> StackInputs:
    on_target = ScaleAction.objects.on_target(
        cluster_id=cluster_id, namespace=namespace, target_kind=target_kind, target_name=target_name
    )
    last_written: dict = {}
    last_baseline: dict = {}
    history = (
        on_target.filter(status=ScaleAction.Status.SUCCEEDED, finished_at__isnull=False)
        .exclude(operation__in=(ScaleAction.Operation.QUOTA, ScaleAction.Operation.POLICY))
        .order_by("-finished_at", "-id")
        .values("after", "baseline")[:_HISTORY]
    )
    for row in history:
        for name, value in (row["after"] or {}).items():
            if name not in last_written:
                last_written[name] = value
                if name in (row["baseline"] or {}):
                    last_baseline[name] = row["baseline"][name]
    active = [
        decisions.Override(action_id=a.id, wants=override_wants(a))
        for a in on_target.active_overrides(now=now).exclude(id__in=list(exclude_ids)).order_by("finished_at", "id")
    ]
    return StackInputs(last_written=last_written, last_baseline=last_baseline, active=active)
