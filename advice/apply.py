"""Applying an advisor result: its recommended (or a chosen) candidate as autoscaler edits and pre-scale rules.

The preview is the autoscaler edit's dry run (scaling/services/policy.py: the spec fields before
and after and the exact merge patch) plus the pre-scale rules that would be created; applying
records the same edit as an audited `policy` action for a worker and creates the rules (each
audited by `prescale_rule_create`) in one transaction. A warm pool has no Kubernetes field here:
it is reported, not applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from advice.models import AdviceRun
from core.errors import ApplicationError
from scaling.autoscaler_policy import PolicyEdit, changes_for_candidate
from scaling.models import PrescaleRule, ScaleAction
from scaling.services.policy import (
    autoscaler_policy_preview,
    autoscaler_policy_request,
    deployment_autoscaler,
)
from scaling.services.prescale import prescale_rule_create


@dataclass
class AdviceApplication:
    candidate: dict
    changes: dict
    edit: PolicyEdit
    autoscaler_name: str
    prescale_rules: list[dict]
    notes: list[str] = field(default_factory=list)
    action: ScaleAction | None = None
    rules: list[PrescaleRule] = field(default_factory=list)


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def prescale_rules_for(candidate_policy: dict) -> list[dict]:
    """Each advised window ("from_utc"-"to_utc", replicas) as a daily rule in UTC."""
    rules = []
    for window in candidate_policy.get("prescale") or []:
        start, end = _minutes(window["from_utc"]), _minutes(window["to_utc"])
        rules.append(
            {
                "cron": f"{start % 60} {start // 60} * * *",
                "timezone": "UTC",
                "min_replicas": int(window["replicas"]),
                "duration_minutes": (end - start) % 1440 or 1440,
            }
        )
    return rules


def _candidate(run: AdviceRun, label: str | None) -> dict:
    if run.status != AdviceRun.Status.DONE or not run.result:
        raise ApplicationError("this advice has no result to apply yet", status=409)
    if not label:
        return run.result["recommended"]
    for candidate in run.result.get("candidates") or []:
        if candidate["label"] == label:
            return candidate
    raise ApplicationError("no candidate of this advice has that label", field="candidate")


def advice_apply_preview(*, run: AdviceRun, label: str | None = None) -> AdviceApplication:
    """The dry run: what applying the candidate would write and create; nothing is stored or sent."""
    candidate = _candidate(run, label)
    kind = deployment_autoscaler(run.deployment).kind
    changes = changes_for_candidate(kind, candidate["policy"])
    autoscaler, edit = autoscaler_policy_preview(deployment=run.deployment, changes=changes)
    notes = []
    if candidate["policy"].get("warm_pool_nodes"):
        notes.append(
            f"the warm pool of {candidate['policy']['warm_pool_nodes']} spare GPU nodes is not applied: "
            "keep them with your node autoscaler's settings"
        )
    return AdviceApplication(
        candidate=candidate,
        changes=changes,
        edit=edit,
        autoscaler_name=autoscaler.name,
        prescale_rules=prescale_rules_for(candidate["policy"]),
        notes=notes,
    )


def advice_apply(
    *, run: AdviceRun, label: str | None = None, reason: str, actor, user, source: str, dispatch: bool = True
) -> AdviceApplication:
    """Apply the candidate: one audited policy action (written by a worker) and the pre-scale rules."""
    plan = advice_apply_preview(run=run, label=label)
    reason = (reason or "").strip() or f"advice #{run.pk}: {plan.candidate['label']}"
    with transaction.atomic():
        plan.action, plan.edit = autoscaler_policy_request(
            deployment=run.deployment,
            changes=plan.changes,
            reason=reason,
            actor=actor,
            source=source,
            dispatch=dispatch,
        )
        plan.rules = [
            prescale_rule_create(
                deployment=run.deployment,
                cron=r["cron"],
                timezone_name=r["timezone"],
                min_replicas=r["min_replicas"],
                duration_minutes=r["duration_minutes"],
                created_by=user,
                actor=actor,
            )
            for r in plan.prescale_rules
        ]
    return plan


def application_json(plan: AdviceApplication) -> dict:
    return {
        "candidate": plan.candidate["label"],
        "autoscaler": {"kind": plan.edit.kind, "name": plan.autoscaler_name},
        "diff": plan.edit.diff,
        "patch": plan.edit.patch,
        "warning": plan.edit.warning or None,
        "prescale_rules": plan.prescale_rules,
        "notes": plan.notes,
    }
