"""The policy advisor for one deployment: which autoscaling policy meets its TTFT objective cheapest.

The search itself is pure (`simulator.advisor`); this module gathers its inputs from what
ScaleDeck knows: the deployment's model (capacity, GPUs, its pool's prices, free room and
start times) and a traffic source (an uploaded trace in the Azure CSV format, or the
deployment's own traffic), then runs it. On a simulated cluster both come from its world; on
any other from the deployment's measured history (`scaling.history`). The result's `source`
says which, and how each figure was obtained. Nothing is written: advice changes nothing.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from core.errors import ApplicationError
from fleet.models import Cluster, ModelDeployment
from simulator import SimNotFound
from simulator.advisor import Advice, Objective, advise
from simulator.replay import DeploymentModel, Load
from simulator.replay_inputs import load_from_traffic, model_from_world
from simulator.traces import Spike, TraceError, read_trace_file

MAX_HOURS = 7 * 24.0
DEFAULT_HOURS = 24.0
DEFAULT_ATTAINMENT = 0.99


def _world(deployment: ModelDeployment):
    cluster = deployment.cluster
    if cluster.backend != Cluster.Backend.SIMULATED:
        raise ApplicationError(
            f"the advisor models deployments of simulated clusters; {cluster.name} is a "
            f"{cluster.get_backend_display()} cluster, whose history ScaleDeck does not model yet"
        )
    from fleet.backends.base import BackendError
    from fleet.world_store import DbWorldStore

    try:
        with transaction.atomic():  # a consistent read; the world is never saved back
            world = DbWorldStore(cluster).load()
    except BackendError as exc:
        raise ApplicationError(str(exc), status=409) from exc
    try:
        world.deployment(deployment.namespace, deployment.name)
    except SimNotFound:
        key = f"{deployment.namespace}/{deployment.name}"
        raise ApplicationError(f"{key} is not in the simulated world of {cluster.name}", status=409) from None
    return world


def deployment_model(deployment: ModelDeployment, now: datetime) -> tuple[DeploymentModel, object]:
    """The replay's model of the deployment, and the world it came from: the world's figures, but
    the cold starts ScaleDeck measured from the cluster's events where it has them."""
    from scaling.history import measured_starts

    world = _world(deployment)
    model = model_from_world(world, deployment.namespace, deployment.name)
    dep = world.deployment(deployment.namespace, deployment.name)
    pool = dep.node_pool or next(iter(world.pools), "")
    measured = measured_starts(deployment, pool, now)
    if measured.pod_seconds is None and measured.node_seconds is None:
        return model, world
    pod = measured.pod_seconds if measured.pod_seconds is not None else model.pod_start_seconds
    node = measured.node_seconds if measured.node_seconds is not None else model.node_start_seconds
    pod_note = measured.pod_note or f"pod start {pod} s (the simulated world's setting: none measured)"
    node_note = measured.node_note or f"node start {node} s (the simulated world's setting: none measured)"
    notes = tuple(n for n in model.notes if not n.startswith("cold start:")) + (f"cold start: {pod_note}, {node_note}",)
    return replace(model, pod_start_seconds=pod, node_start_seconds=node, notes=notes), world


def check_objective(*, slo: float, attainment: float, hours: float | None, rate_multiplier: float) -> None:
    if not 0 < slo <= 600:
        raise ApplicationError(f"the TTFT objective must be above 0 and at most 600 s, not {slo:g}", field="slo")
    if not 0 < attainment <= 1:
        raise ApplicationError(
            f"attainment is a fraction above 0 and at most 1, not {attainment:g}", field="attainment"
        )
    if hours is not None and not 0 < hours <= MAX_HOURS:
        raise ApplicationError(f"hours must be above 0 and at most {MAX_HOURS:g}, not {hours:g}", field="hours")
    if not 0 < rate_multiplier <= 1000:
        raise ApplicationError(
            f"the rate multiplier must be above 0 and at most 1000, not {rate_multiplier:g}", field="rate_multiplier"
        )


def advice_load(
    *,
    deployment: ModelDeployment,
    model: DeploymentModel,
    world,
    trace_path: str | Path | None,
    hours: float | None,
    rate_multiplier: float,
    spike: Spike | None,
    time_scale: float = 1.0,
) -> tuple[Load, int, Load]:
    """The traffic every candidate replays (warm-up first), the warm-up's length in seconds, and the
    same traffic without the spike (what pre-scale windows are read from: nobody schedules a
    viral spike in advance)."""
    warmup = model.longest_cold_start_seconds
    if trace_path is not None:
        try:
            trace = read_trace_file(trace_path, time_scale=time_scale)
            seconds = round(hours * 3600) if hours else trace.seconds
            plain = trace.to_load(seconds=seconds, rate_multiplier=rate_multiplier, warmup_seconds=warmup)
            if spike is None:
                return plain, warmup, plain
            return (
                trace.to_load(seconds=seconds, rate_multiplier=rate_multiplier, spike=spike, warmup_seconds=warmup),
                warmup,
                plain,
            )
        except TraceError as exc:
            raise ApplicationError(f"trace refused: {exc}", field="trace") from exc
        except OSError as exc:
            raise ApplicationError(f"cannot read the trace: {exc.strerror}", field="trace") from exc
    from simulator.traffic import Spike as TrafficSpike

    dep = world.deployment(deployment.namespace, deployment.name)
    seconds = round((hours or DEFAULT_HOURS) * 3600)
    start = world.t
    plain = load_from_traffic(dep.traffic, seed=world.seed, key=dep.key, start=start - warmup, seconds=warmup + seconds)
    if rate_multiplier != 1.0:
        for i in range(plain.seconds):
            plain.arrivals[i] *= rate_multiplier
    if spike is None:
        return plain, warmup, plain
    shape = TrafficSpike(
        start=start + spike.start_seconds,
        multiplier=spike.multiplier,
        ramp_seconds=spike.ramp_seconds,
        hold_seconds=spike.duration_seconds,
        decay_seconds=spike.ramp_seconds,
    )
    spiked = Load(plain.start, array("d", plain.arrivals), plain.prompt_tokens, plain.output_tokens)
    for i in range(spiked.seconds):
        spiked.arrivals[i] *= shape.factor(plain.start + i)
    return spiked, warmup, plain


def history_load(
    load: Load, *, warmup_seconds: int, rate_multiplier: float, spike: Spike | None
) -> tuple[Load, int, Load]:
    """A measured load made ready to replay: its first minutes repeated in front as the warm-up
    (a whole number of minutes, at least `warmup_seconds`, so the per-minute token sizes stay
    aligned), arrivals times `rate_multiplier`, and `spike` counted from the end of the warm-up.
    Returns (load, warm-up seconds, the load without the spike)."""
    minutes = -(-warmup_seconds // 60)
    warmup = min(minutes * 60, load.seconds)
    minutes = warmup // 60
    arrivals = array("d", load.arrivals[:warmup]) + load.arrivals
    if rate_multiplier != 1.0:
        for i in range(len(arrivals)):
            arrivals[i] *= rate_multiplier
    plain = Load(
        load.start - warmup,
        arrivals,
        array("d", load.prompt_tokens[:minutes]) + load.prompt_tokens,
        array("d", load.output_tokens[:minutes]) + load.output_tokens,
    )
    if spike is None:
        return plain, warmup, plain
    spiked = array("d", plain.arrivals)
    for i in range(warmup, len(spiked)):
        spiked[i] *= spike.factor(i - warmup)
    return Load(plain.start, spiked, plain.prompt_tokens, plain.output_tokens), warmup, plain


def check_scored(load: Load, warmup_seconds: int) -> None:
    """Refuse a replay whose warm-up leaves no whole minute to score (a too-short history)."""
    if load.seconds - warmup_seconds < 60:
        raise ApplicationError(
            f"the traffic holds {load.seconds // 60} minutes and the warm-up (the longest cold start, "
            f"{warmup_seconds // 60} minutes) leaves none to score: replay more hours",
            field="hours",
        )


def _from_history(
    *, deployment: ModelDeployment, trace_path, hours, rate_multiplier, spike, time_scale, now: datetime | None
):
    """(model, load, warm-up, profile, source) of a deployment on a cluster that is not simulated."""
    from scaling.history import deployment_history

    history = deployment_history(deployment=deployment, hours=hours or DEFAULT_HOURS, now=now or timezone.now())
    model = history.model
    if trace_path is not None:
        load, warmup, profile = advice_load(
            deployment=deployment,
            model=model,
            world=None,
            trace_path=trace_path,
            hours=hours,
            rate_multiplier=rate_multiplier,
            spike=spike,
            time_scale=time_scale,
        )
        traffic = "uploaded trace"
    else:
        load, warmup, profile = history_load(
            history.load, warmup_seconds=model.longest_cold_start_seconds, rate_multiplier=rate_multiplier, spike=spike
        )
        traffic = "deployment history"
    check_scored(load, warmup)
    return model, load, warmup, profile, {"traffic": traffic, "model": "deployment history", "notes": list(model.notes)}


def advice_run(
    *,
    deployment: ModelDeployment,
    trace_path: str | Path | None = None,
    hours: float | None = None,
    rate_multiplier: float = 1.0,
    spike: Spike | None = None,
    slo: float | None = None,
    attainment: float = DEFAULT_ATTAINMENT,
    time_scale: float = 1.0,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    now: datetime | None = None,
) -> Advice:
    """Search the policies for `deployment` on the given traffic. Raises ApplicationError.

    A simulated cluster's deployment is modelled from its world; any other from its measured
    history (`scaling.history`), whose traffic is replayed when no trace is given."""
    slo = deployment.slo_seconds if slo is None else slo
    check_objective(slo=slo, attainment=attainment, hours=hours, rate_multiplier=rate_multiplier)
    if deployment.cluster.backend != Cluster.Backend.SIMULATED:
        model, load, warmup, profile, source = _from_history(
            deployment=deployment,
            trace_path=trace_path,
            hours=hours,
            rate_multiplier=rate_multiplier,
            spike=spike,
            time_scale=time_scale,
            now=now,
        )
    else:
        model, world = deployment_model(deployment, now or timezone.now())
        load, warmup, profile = advice_load(
            deployment=deployment,
            model=model,
            world=world,
            trace_path=trace_path,
            hours=hours,
            rate_multiplier=rate_multiplier,
            spike=spike,
            time_scale=time_scale,
        )
        source = {
            "traffic": "uploaded trace" if trace_path is not None else "simulated world",
            "model": "simulated world",
            "notes": list(model.notes),
        }
    advice = advise(
        model,
        load,
        Objective(slo, attainment),
        warmup_seconds=warmup,
        workers=workers,
        progress=progress,
        cancelled=cancelled,
        profile=profile,
    )
    return replace(advice, source=source)
