"""`/scaledeck scale namespace/name N [for 2h] "reason"`: a dry run with Confirm/Cancel buttons.

The dry run and the apply call `scale_action_request`, the service behind the API's
`POST /api/v1/deployments/{id}/scale/`, as the linked ScaleDeck user: the same checks (role,
autoscaler bounds, quota), the same audit. The apply runs in the worker (chatops/tasks.py) because
Slack waits 3 seconds at most; its result goes to the command's response_url.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

from accounts.models import Role, role_at_least
from accounts.services import user_role
from core.errors import ApplicationError
from fleet.models import ModelDeployment
from scaling.models import ScaleAction
from scaling.services.actions import scale_action_request
from scaling.services.actors import Actor

USAGE = '`/scaledeck scale namespace/name N [for 2h] "reason"` (N replicas at least; `for` 30m to 24h)'
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?$")
MAX_TTL_MINUTES = 24 * 60


@dataclass(frozen=True)
class ScaleCommand:
    deployment: ModelDeployment
    replicas: int
    ttl_minutes: int | None
    reason: str

    def button_value(self) -> str:
        return json.dumps(
            {
                "deployment": self.deployment.id,
                "replicas": self.replicas,
                "ttl_minutes": self.ttl_minutes,
                "reason": self.reason,
            }
        )


def _minutes(text: str) -> int | None:
    match = _DURATION.match(text.lower())
    if not text or not match or not any(match.groups()):
        return None
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


def parse(args: list[str], find) -> tuple[ScaleCommand | None, str]:
    """(command, "") or (None, what is wrong). `find(ref)` -> (deployment, problem)."""
    if len(args) < 3:
        return None, f"Usage: {USAGE}."
    ref, count, rest = args[0], args[1], args[2:]
    deployment, problem = find(ref)
    if deployment is None:
        return None, problem
    if not count.isdigit() or not 0 <= int(count) <= 1000:
        return None, f"{count[:20]!r} is not a number of replicas (0 to 1,000)."
    ttl = None
    if rest and rest[0].lower() == "for":
        ttl = _minutes(rest[1]) if len(rest) > 1 else None
        if ttl is None or not 1 <= ttl <= MAX_TTL_MINUTES:
            return None, f"Say how long as 30m, 2h or 1h30m, up to 24h. Usage: {USAGE}."
        rest = rest[2:]
    reason = " ".join(rest).strip()
    if not reason:
        return None, f"Give a reason in quotes. Usage: {USAGE}."
    return ScaleCommand(deployment=deployment, replicas=int(count), ttl_minutes=ttl, reason=reason[:500]), ""


def split_words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an unclosed quote: read it as plain words
        return text.split()


def may_scale(user) -> bool:
    return role_at_least(user_role(user), Role.OPERATOR)


def dry_run_message(*, user, command: ScaleCommand) -> dict:
    """Slack's message for the dry run: what would change, its cost and quota effect, and buttons."""
    try:
        action = scale_action_request(
            deployment=command.deployment,
            replicas=command.replicas,
            reason=command.reason,
            actor=Actor.of(user),
            source=ScaleAction.Source.API,
            ttl_minutes=command.ttl_minutes,
            dry_run=True,
        )
    except ApplicationError as exc:
        return {"response_type": "ephemeral", "text": f"Refused: {exc.message}"}
    preview = action.preview
    d = command.deployment
    cost_before, cost_after = preview.cost_per_hour_usd_before, preview.cost_per_hour_usd_after
    cost = "unknown" if cost_before is None or cost_after is None else f"${cost_before:,.2f}/h → ${cost_after:,.2f}/h"
    quota = _quota_text(preview.quota)
    until = f" for {command.ttl_minutes} min" if command.ttl_minutes else ""
    summary = (
        f"*Dry run* {d.cluster.name} {d.namespace}/{d.name}: at least {command.replicas} replicas{until} "
        f"({preview.replicas_before} → {preview.replicas_after} now). Cost {cost}. Quota: {quota}. "
        f"Reason: {command.reason}"
    )
    value = command.button_value()
    return {
        "response_type": "ephemeral",
        "text": summary,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "scale_confirm",
                        "style": "primary",
                        "value": value,
                        "text": {"type": "plain_text", "text": "Confirm"},
                    },
                    {
                        "type": "button",
                        "action_id": "scale_cancel",
                        "value": value,
                        "text": {"type": "plain_text", "text": "Cancel"},
                    },
                ],
            },
        ],
    }


def _quota_text(quotas: list[dict]) -> str:
    if not quotas:
        return "no GPU quota in this namespace"
    return "; ".join(
        f"{q['quota']} needs {q['needed']} more {q['resource']}, {q['available_after']} left after" for q in quotas
    )
