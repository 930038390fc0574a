"""`manage.py whatif DEPLOYMENT_ID --policy "..." [--policy "..."] [--hours 6] [--spike 3]`, and the advisor:
`manage.py whatif DEPLOYMENT_ID [--trace FILE] [--rate-multiplier X] [--spike X] [--slo S] [--attainment F]
--advise [--json]`."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
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
    help = (
        "Replay a deployment's traffic (a simulated world's, or a real cluster's measured history) against "
        "candidate autoscaler policies, side by side."
    )

    def add_arguments(self, parser):
        parser.add_argument("deployment_id", type=int)
        parser.add_argument(
            "--hours",
            type=float,
            default=None,
            help="how long to replay (default 6): at most 24 on a simulated cluster, 168 of a "
            "real cluster's measured history; with --advise at most 168 "
            "(default: the trace's length, or 24)",
        )
        parser.add_argument("--policy", action="append", default=[], help=HELP)
        parser.add_argument(
            "--spike",
            type=float,
            default=None,
            help="multiply the traffic by this from 1 hour in (ramp 5 min, hold 30, decay 15); "
            "with --advise, see --spike-start/--spike-ramp/--spike-duration",
        )
        advice = parser.add_argument_group("advisor (--advise)")
        advice.add_argument(
            "--advise", action="store_true", help="search for the cheapest policy that meets the TTFT objective"
        )
        advice.add_argument("--json", action="store_true", help="print the advice as one JSON object")
        advice.add_argument("--trace", help="a CSV trace: TIMESTAMP,ContextTokens,GeneratedTokens, one row per request")
        advice.add_argument("--rate-multiplier", type=float, default=1.0, help="multiply the trace's request rate")
        advice.add_argument("--time-scale", type=float, default=1.0, help="stretch the trace's time (2: half as fast)")
        advice.add_argument(
            "--spike-start",
            type=int,
            default=None,
            help="seconds into the run the spike starts (default: a third of the run, at most 1 h)",
        )
        advice.add_argument("--spike-ramp", type=int, default=600, help="seconds to reach the spike's height")
        advice.add_argument("--spike-duration", type=int, default=1800, help="seconds the spike holds its height")
        advice.add_argument(
            "--slo", type=float, default=None, help="TTFT p95 objective in seconds (default: the deployment's)"
        )
        advice.add_argument(
            "--attainment",
            type=float,
            default=0.99,
            help="fraction of minutes that must meet the objective (default 0.99)",
        )
        advice.add_argument("--workers", type=int, default=2, help="worker processes for candidates")

    def handle(self, *args, **options):
        deployment = ModelDeployment.objects.select_related("cluster").filter(id=options["deployment_id"]).first()
        if deployment is None:
            raise CommandError(f"no deployment with id {options['deployment_id']}")
        if options["advise"]:
            self._advise(deployment, options)
            return
        for flag in ("trace", "slo", "json"):
            if options[flag]:
                raise CommandError(f"--{flag} goes with --advise")
        options["hours"] = 6.0 if options["hours"] is None else options["hours"]
        if not options["policy"]:
            raise CommandError(f"give at least one --policy: {HELP}")

        def progress(i: int, n: int, policy) -> None:
            self.stderr.write(f"simulating {i}/{n}: {policy.label}")

        try:
            candidates = [parse_policy(text) for text in options["policy"]]
            whatif = whatif_compare(
                deployment=deployment,
                candidates=candidates,
                hours=options["hours"],
                spike=options["spike"],
                progress=progress,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc

        summaries = whatif.summaries
        at = summaries[0].series["at"]
        what = "deployment history replayed" if whatif.history else "simulated"
        span = f" ({at[0]:%Y-%m-%d %H:%M}-{at[-1]:%H:%M} UTC, {what})" if at else ""
        spike = f", traffic x{options['spike']:g} from 1 h in" if options["spike"] else ""
        self.stdout.write(
            f"{deployment.cluster.name} {deployment.namespace}/{deployment.name}: {options['hours']:g} h{span}"
            f"{spike}, SLO TTFT p95 {deployment.slo_seconds:g} s"
        )
        for note in whatif.notes:
            self.stdout.write(f"  {note}")
        for line in table(summaries):
            self.stdout.write(line)

    def _advise(self, deployment, options) -> None:
        from scaling.advice import advice_run
        from simulator.traces import Spike, TraceError

        if options["policy"]:
            raise CommandError("--advise searches the policies itself: leave out --policy")
        spike = None
        try:
            if options["spike"] is not None:
                start = options["spike_start"]
                if start is None:
                    start = min(3600, round((options["hours"] or 3.0) * 3600 / 3))
                spike = Spike(options["spike"], start, options["spike_ramp"], options["spike_duration"])
        except TraceError as exc:
            raise CommandError(str(exc)) from exc

        def progress(done: int, expected: int) -> None:
            if not options["json"]:
                self.stderr.write(f"replayed {done} of about {expected} candidates")

        try:
            advice = advice_run(
                deployment=deployment,
                trace_path=options["trace"],
                hours=options["hours"],
                rate_multiplier=options["rate_multiplier"],
                spike=spike,
                slo=options["slo"],
                attainment=options["attainment"],
                time_scale=options["time_scale"],
                workers=options["workers"],
                progress=progress,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if options["json"]:
            self.stdout.write(json.dumps(advice.as_json()))
            return
        rec, seed, static = advice.recommended, advice.keda_seed, advice.static_peak
        goal = advice.objective
        self.stdout.write(
            f"{deployment.cluster.name} {deployment.namespace}/{deployment.name}: {advice.hours:g} h, "
            f"TTFT p95 <= {goal.ttft_p95_seconds:g} s in {goal.attainment:.1%} of minutes; "
            f"{len(advice.candidates)} candidates replayed"
        )
        source = advice.source
        if source:
            self.stdout.write(f"traffic from the {source['traffic']}, model from the {source['model']}")
            for note in source["notes"]:
                self.stdout.write(f"  {note}")
        if not advice.meets_objective:
            self.stdout.write("no candidate meets the objective: the best attainment is recommended")
        for what, tried in (("recommended", rec), ("keda seed", seed), ("static peak", static)):
            o = tried.outcome
            self.stdout.write(
                f"{what:<12} {o.slo_violation_minutes:>5} min over the SLO, attainment "
                f"{o.attainment:.2%}, {o.gpu_hours:.2f} GPU-hours, ${o.cost_usd:,.2f}: "
                f"{tried.policy.label}"
            )
