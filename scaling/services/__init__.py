"""Scaling services: the only code that changes scaling state. Pages, the API, tasks and commands call these."""

from scaling.services.actions import DryRunPreview, scale_action_dispatch, scale_action_request
from scaling.services.actors import Actor
from scaling.services.execution import TargetBusy, TransientActionError, scale_action_execute, scale_action_fail
from scaling.services.overrides import override_end, overrides_expire_due
from scaling.services.prescale import (
    prescale_rule_create,
    prescale_rule_delete,
    prescale_rule_problems,
    prescale_rule_update,
    prescale_rules_fire_due,
)
from scaling.services.quotas import quota_update
from scaling.services.tick import (
    TickResult,
    actions_redispatch_stuck,
    scale_action_run_inline,
    scaling_tick_run,
)

__all__ = [
    "Actor",
    "DryRunPreview",
    "TargetBusy",
    "TickResult",
    "TransientActionError",
    "actions_redispatch_stuck",
    "override_end",
    "overrides_expire_due",
    "prescale_rule_create",
    "prescale_rule_delete",
    "prescale_rule_problems",
    "prescale_rule_update",
    "prescale_rules_fire_due",
    "quota_update",
    "scale_action_dispatch",
    "scale_action_execute",
    "scale_action_fail",
    "scale_action_request",
    "scale_action_run_inline",
    "scaling_tick_run",
]
