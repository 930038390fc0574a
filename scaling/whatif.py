"""What-if for one deployment: replay its traffic against candidate autoscaler policies.

The simulator does the work; this module turns operator input into `Policy` values and runs
them: on a simulated cluster against a copy of its world (`simulator.whatif`), on any other
cluster on the deployment's measured history from Prometheus (`scaling.history`, replayed at
1-second resolution by `simulator.replay`). Nothing is saved: a what-if changes nothing, so any
role may run one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from core.errors import ApplicationError
from fleet.models import Cluster, ModelDeployment
from simulator import Policy, SimNotFound, Spike, Summary, Traffic, compare_policies
from simulator.whatif import MAX_HOURS

MAX_CANDIDATES = 4
# A candidate's replicas cost simulation time: past this one run could take minutes of CPU.
MAX_REPLICAS = 1_000
MAX_SPIKE = 100.0
SPIKE_AFTER_SECONDS = 3600  # the spike starts an hour in, once the candidates have settled

KINDS = ("keda", "hpa", "none")
METRICS = ("queue_depth", "gpu_utilization", "cpu_utilization")
# key in the text -> (Policy field, type)
KEYS: dict[str, tuple[str, type]] = {
    "min": ("min_replicas", int),
    "max": ("max_replicas", int),
    "target": ("target_value", float),
    "metric": ("metric", str),
    "polling": ("polling_interval_s", int),
    "cooldown": ("cooldown_s", int),
    "stabilization": ("scale_down_stabilization_s", int),
}
HELP = (
    "kind then key=value pairs, e.g. `keda min=2 max=12 target=5`, "
    "`hpa min=2 max=8 metric=gpu_utilization target=0.7`, `none min=6`"
)


def parse_policy(text: str) -> Policy:
    """`keda min=2 max=12 target=5` -> Policy. Pure; raises ApplicationError(field="policy").

    kind is keda (queue depth per replica), hpa (GPU or CPU utilization as a 0-1 target,
    by default gpu_utilization 0.7) or none (a fixed `min` replicas, no autoscaler).
    """

    def refuse(message: str) -> ApplicationError:
        return ApplicationError(f"policy {text.strip()!r}: {message}", field="policy")

    words = text.split()
    if not words:
        raise ApplicationError(f"empty policy: give {HELP}", field="policy")
    kind = words[0].lower()
    if kind not in KINDS:
        raise refuse(f"unknown kind {words[0]!r}; use one of {', '.join(KINDS)}")
    values: dict[str, object] = {}
    for word in words[1:]:
        key, sep, raw = word.partition("=")
        key = key.lower()
        if not sep or not raw:
            raise refuse(f"{word!r} is not key=value")
        if key not in KEYS:
            raise refuse(f"unknown key {key!r}; use {', '.join(KEYS)}")
        if key in values:
            raise refuse(f"{key} given twice")
        if kind == "none" and key != "min":
            raise refuse("kind none takes only min (the fixed replica count)")
        field, cast = KEYS[key]
        if cast is str:
            if raw not in METRICS:
                raise refuse(f"unknown metric {raw!r}; use one of {', '.join(METRICS)}")
            values[key] = raw
            continue
        try:
            number = cast(raw)
        except ValueError:
            what = "a whole number" if cast is int else "a number"
            raise refuse(f"{key} must be {what}, not {raw!r}") from None
        if number != number or number in (float("inf"), float("-inf")):  # NaN, inf
            raise refuse(f"{key} must be a finite number, not {raw!r}")
        values[key] = number

    if kind == "none":
        if "min" not in values:
            raise refuse("kind none needs min, the fixed replica count")
        replicas = values["min"]
        if not 0 <= replicas <= MAX_REPLICAS:
            raise refuse(f"min must be within 0-{MAX_REPLICAS}")
        return Policy(label=_label(kind, values), kind="none", min_replicas=replicas, max_replicas=max(replicas, 1))

    metric = values.get("metric", "queue_depth" if kind == "keda" else "gpu_utilization")
    target = values.get("target", 5.0 if metric == "queue_depth" else 0.7)
    low, high = values.get("min", 1), values.get("max", 10)
    floor = 0 if kind == "keda" else 1  # KEDA can idle at zero; an HPA cannot
    if low < floor:
        raise refuse(f"min must be at least {floor} for {kind}")
    if high < 1 or high > MAX_REPLICAS:
        raise refuse(f"max must be within 1-{MAX_REPLICAS}")
    if low > high:
        raise refuse(f"min {low} is above max {high}")
    if target <= 0:
        raise refuse("target must be above 0")
    if metric != "queue_depth" and target > 1:
        raise refuse(f"target for {metric} is a fraction of 1 (0.7 = 70%), not {target:g}")
    for key in ("polling", "cooldown", "stabilization"):
        if key in values and not 0 <= values[key] <= 3600:
            raise refuse(f"{key} must be within 0-3600 seconds")
    fields = {KEYS[k][0]: v for k, v in values.items()}
    fields.update(min_replicas=low, max_replicas=high, metric=metric, target_value=float(target))
    return Policy(label=_label(kind, values), kind=kind, **fields)


def _label(kind: str, values: dict[str, object]) -> str:
    return " ".join([kind, *(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())])


def replays_history(cluster: Cluster) -> bool:
    """Whether a what-if on this cluster replays measured history (any cluster that is not
    simulated) rather than a copy of a simulated world."""
    return cluster.backend != Cluster.Backend.SIMULATED


def max_hours(cluster: Cluster) -> float:
    """The longest run: a simulated world keeps 24 hours of minutes; Prometheus history, 7 days."""
    from scaling.history import MAX_HOURS as HISTORY_HOURS

    return HISTORY_HOURS if replays_history(cluster) else MAX_HOURS


def check_run(*, hours: float, spike: float | None, candidates: int, longest: float = MAX_HOURS) -> None:
    """The run's size limits, so a what-if stays within seconds. Pure. `longest`: `max_hours`."""
    if not 0 < hours <= longest:
        raise ApplicationError(f"hours must be above 0 and at most {longest:g}, not {hours:g}", field="hours")
    if spike is not None:
        if not 0 < spike <= MAX_SPIKE:
            raise ApplicationError(
                f"spike is a multiplier above 0 and at most {MAX_SPIKE:g}, not {spike:g}", field="spike"
            )
        if hours * 3600 <= SPIKE_AFTER_SECONDS:
            raise ApplicationError("the spike starts 1 hour in: run more than 1 hour to see it", field="hours")
    if not 1 <= candidates <= MAX_CANDIDATES:
        raise ApplicationError(f"give 1 to {MAX_CANDIDATES} policies, not {candidates}", field="policy")


def check_replayable(deployment: ModelDeployment) -> None:
    """Refuse (409) at once a deployment whose cluster has nothing to replay: no Prometheus."""
    cluster = deployment.cluster
    if replays_history(cluster) and not cluster.prometheus_url:
        raise ApplicationError(
            f"{cluster.name} has no Prometheus: what-if replays a {cluster.get_backend_display()} deployment's "
            "measured traffic from it; give the cluster a Prometheus URL",
            status=409,
        )


@dataclass(frozen=True)
class WhatIf:
    """One what-if: a Summary per candidate, in order, and what was replayed."""

    summaries: list[Summary]
    history: bool  # replayed on measured history (False: a copy of the simulated world)
    notes: tuple[str, ...] = ()  # where the model's figures came from (history only)


def whatif_compare(
    *,
    deployment: ModelDeployment,
    candidates: list[Policy],
    hours: float,
    spike: float | None,
    progress: Callable[[int, int, Policy], None] | None = None,
    now: datetime | None = None,
) -> WhatIf:
    """Every candidate on the deployment's traffic over `hours` (times `spike` from an hour in, if
    given), judged against the deployment's TTFT p95 SLO. `progress(i, n, policy)` is called before
    each candidate runs.

    A simulated cluster's deployment runs on a copy of its world from the world's present; any other
    on its measured history, the last `hours` up to `now` (`scaling.history`): arrivals from vLLM's
    request counters in Prometheus, capacity fitted, cold starts measured (each figure's source in
    `notes`), replayed at 1-second resolution (`simulator.replay`)."""
    check_replayable(deployment)
    check_run(hours=hours, spike=spike, candidates=len(candidates), longest=max_hours(deployment.cluster))
    if replays_history(deployment.cluster):
        return _history_compare(
            deployment=deployment, candidates=candidates, hours=hours, spike=spike, progress=progress, now=now
        )
    return WhatIf(
        _world_compare(deployment=deployment, candidates=candidates, hours=hours, spike=spike, progress=progress),
        history=False,
    )


def _world_compare(*, deployment, candidates, hours, spike, progress) -> list[Summary]:
    from fleet.backends.base import BackendError
    from fleet.world_store import DbWorldStore

    cluster = deployment.cluster
    try:
        with transaction.atomic():  # a consistent read; the world is never saved back
            world = DbWorldStore(cluster).load()
    except BackendError as exc:
        raise ApplicationError(str(exc), status=409) from exc
    key = f"{deployment.namespace}/{deployment.name}"
    try:
        dep = world.deployment(deployment.namespace, deployment.name)
    except SimNotFound:
        raise ApplicationError(f"{key} is not in the simulated world of {cluster.name}", status=409) from None
    traffic: Traffic | None = None
    if spike is not None:
        traffic = dep.traffic.with_spike(Spike(start=world.t + SPIKE_AFTER_SECONDS, multiplier=spike))
    base = world.to_dict()
    summaries: list[Summary] = []
    for i, policy in enumerate(candidates, start=1):
        if progress:
            progress(i, len(candidates), policy)
        summaries += compare_policies(base, key, traffic, [policy], hours, slo_ttft_p95_seconds=deployment.slo_seconds)
    return summaries


def _history_compare(*, deployment, candidates, hours, spike, progress, now) -> WhatIf:
    """The last `hours` of measured history replayed, a warm-up as long as the longest cold start
    first and not scored; `spike` multiplies the traffic from an hour in."""
    from django.utils import timezone

    from scaling.advice import check_scored, history_load
    from scaling.history import deployment_history
    from simulator.replay import ReplayCache, replay
    from simulator.traces import Spike as TraceSpike
    from simulator.whatif import replayed_summary

    history = deployment_history(deployment=deployment, hours=hours, now=now or timezone.now())
    model = history.model
    shape = TraceSpike(spike, start_seconds=SPIKE_AFTER_SECONDS) if spike is not None else None
    load, warmup, _ = history_load(
        history.load, warmup_seconds=model.longest_cold_start_seconds, rate_multiplier=1.0, spike=shape
    )
    check_scored(load, warmup)
    slo = deployment.slo_seconds
    cache = ReplayCache(model, load)
    summaries = []
    for i, policy in enumerate(candidates, start=1):
        if progress:
            progress(i, len(candidates), policy)
        outcome = replay(model, load, policy, slo_ttft_p95_seconds=slo, warmup_seconds=warmup, cache=cache)
        summaries.append(replayed_summary(policy, outcome, load, warmup_seconds=warmup, slo_ttft_p95_seconds=slo))
    return WhatIf(summaries, history=True, notes=model.notes)
