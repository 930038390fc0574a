"""`manage.py scaling_tick`: one pass of the periodic scaling jobs, waiting for what it started."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from scaling.models import ScaleAction
from scaling.services import scale_action_run_inline, scaling_tick_run


def describe(action: ScaleAction) -> str:
    changes = ", ".join(f"{name} {action.before.get(name)} -> {value}" for name, value in (action.after or {}).items())
    line = (
        f"#{action.pk} {action.status:<9} {action.namespace}/{action.target_name} ({action.target_kind}) "
        f"{changes or '-'} by {action.actor_label}"
    )
    if action.error:
        line += f": {action.error}"
    elif action.notes:
        line += f": {action.notes[-1]}"
    return line


class Command(BaseCommand):
    help = (
        "Run the periodic scaling jobs once (due pre-scale rules, ended windows, expired overrides, "
        "stuck actions) and carry out the actions they start in this process."
    )

    def add_arguments(self, parser):
        parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for an action a worker holds")

    def handle(self, *args, **options):
        result = scaling_tick_run(dispatch=False)
        failed = []
        for firing in result.firings:
            if firing.error:
                self.stdout.write(
                    f"#{firing.action_id} rejected  rule #{firing.rule_id} firing {firing.at:%Y-%m-%d %H:%M} UTC: "
                    f"{firing.error}"
                )
                failed.append(f"#{firing.action_id} rejected: {firing.error}")
        for firing in result.missed:
            self.stdout.write(f"missed    rule #{firing.rule_id} firing {firing.at:%Y-%m-%d %H:%M} UTC: {firing.error}")
        for action_id in result.action_ids:
            action = scale_action_run_inline(action_id=action_id, wait_seconds=options["wait"])
            self.stdout.write(describe(action))
            if action.status != ScaleAction.Status.SUCCEEDED:
                failed.append(f"#{action.pk} {action.status}: {action.error or 'unfinished'}")
        if not result.action_ids and not result.firings:  # a missed firing applies nothing either
            self.stdout.write("nothing due")
        if failed:
            total = len(result.action_ids) + sum(1 for f in result.firings if f.error)
            raise CommandError(f"{len(failed)} of {total} actions did not succeed; first: {failed[0]}")
