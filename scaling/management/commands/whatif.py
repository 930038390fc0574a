"""`manage.py whatif DEPLOYMENT_ID --policy "..." [--policy "..."] [--hours 6] [--spike 3]`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from fleet.models import ModelDeployment
from scaling.whatif import HELP, parse_policy, whatif_compare
from simulator import Summary

COLUMNS = (
    # header, width, cell
    ("SLO-viol (min)", 14, lambda s: f"{s.slo_violation_minutes}"),
    ("GPU-hours (GPU·h)", 17, lambda s: f"{s.gpu_hours:.2f}"),
    ("cost ($)", 10, lambda s: f"{s.cost_usd:.2f}"),
    ("reversals", 9, lambda s: f"{s.scale_reversals}"),
    ("peak (replicas)", 15, lambda s: f"{s.peak_replicas}"),
    ("abandoned (req)", 15, lambda s: f"{s.requests_abandoned:.0f}"),
)


def table(summaries: list[Summary]) -> list[str]:
    width = max(len("policy"), *(len(s.policy.label) for s in summaries))
    lines = ["  ".join([f"{'policy':<{width}}", *(f"{h:>{w}}" for h, w, _ in COLUMNS)])]
    for s in summaries:
        lines.append("  ".join([f"{s.policy.label:<{width}}", *(f"{cell(s):>{w}}" for _, w, cell in COLUMNS)]))
    return lines


class Command(BaseCommand):
    help = "Replay a simulated deployment's traffic against candidate autoscaler policies, side by side."

    def add_arguments(self, parser):
        parser.add_argument("deployment_id", type=int)
        parser.add_argument("--hours", type=float, default=6.0, help="how long to simulate, at most 24")
        parser.add_argument("--policy", action="append", default=[], help=HELP)
        parser.add_argument("--spike", type=float, default=None,
                            help="multiply the traffic by this from 1 hour in (ramp 5 min, hold 30, decay 15)")

    def handle(self, *args, **options):
        deployment = (
            ModelDeployment.objects.select_related("cluster").filter(id=options["deployment_id"]).first()
        )
        if deployment is None:
            raise CommandError(f"no deployment with id {options['deployment_id']}")
        if not options["policy"]:
            raise CommandError(f"give at least one --policy: {HELP}")

        def progress(i: int, n: int, policy) -> None:
            self.stderr.write(f"simulating {i}/{n}: {policy.label}")

        try:
            candidates = [parse_policy(text) for text in options["policy"]]
            summaries = whatif_compare(deployment=deployment, candidates=candidates, hours=options["hours"],
                                       spike=options["spike"], progress=progress)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc

        at = summaries[0].series["at"]
        span = f" ({at[0]:%Y-%m-%d %H:%M}-{at[-1]:%H:%M} UTC, simulated)" if at else ""
        spike = f", traffic x{options['spike']:g} from 1 h in" if options["spike"] else ""
        self.stdout.write(
            f"{deployment.cluster.name} {deployment.namespace}/{deployment.name}: {options['hours']:g} h{span}"
            f"{spike}, SLO TTFT p95 {deployment.slo_seconds:g} s"
        )
        for line in table(summaries):
            self.stdout.write(line)
