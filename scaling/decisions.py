"""What to write for a scale request: target, fields, before/after, and the reasons to refuse.

Pure: values in, values out; no ORM, no clock, no I/O. The services feed it what the database
(request time) or the cluster (execution time) says, and act on the answer.

Vocabulary
- *target*: the object written. A Deployment scaled by a KEDA ScaledObject or an HPA is
  autoscaled and its `spec.replicas` is never written: the autoscaler's floor is. KEDA's own
  `keda-hpa-*` HPA is never a target. No autoscaler: the Deployment's `/scale` subresource.
- *field*: a value by name: `replicas` (Deployment), `min_replicas`, `max_replicas`,
  `paused_replicas` (ScaledObject), `min_replicas`, `max_replicas` (HPA).
- *contribution*: what a request wants of a field: ("floor", N) = at least N, ("pin", N) = exactly N.
- *override*: a time-boxed request (a manual `for 2h`, a pre-scale window) that is active.
- *baseline*: what a field falls back to when no override is active: the value found before the
  first override, or the value of the last permanent (no-duration) request.

The value of a field is: the most recent active pin on it if any, else the highest of the
baseline and the active floors. So overlapping windows take the highest floor, and an override
ending restores the next-highest, down to the baseline.

ScaleDeck remembers the last value it wrote to each field. When the cluster holds something
else, someone changed it meanwhile: a restore then leaves it as it is, and any other request
takes the cluster's value as the new baseline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from core.errors import ApplicationError
from fleet.autoscalers import ReplicaOwner, ReplicaOwnerKind, api_kind
from fleet.backends.base import AutoscalerFacts
from scaling.quota_keys import quota_key_error, quota_value_error

FLOOR = "floor"
PIN = "pin"
MODES = (FLOOR, PIN)

KEDA_PAUSED_ANNOTATION = "autoscaling.keda.sh/paused-replicas"

FIELD_PATHS: dict[tuple[str, str], str] = {
    (ReplicaOwnerKind.DEPLOYMENT, "replicas"): "spec.replicas (scale subresource)",
    (ReplicaOwnerKind.SCALEDOBJECT, "min_replicas"): "spec.minReplicaCount",
    (ReplicaOwnerKind.SCALEDOBJECT, "max_replicas"): "spec.maxReplicaCount",
    (ReplicaOwnerKind.SCALEDOBJECT, "paused_replicas"): f"metadata.annotations[{KEDA_PAUSED_ANNOTATION}]",
    (ReplicaOwnerKind.HPA, "min_replicas"): "spec.minReplicas",
    (ReplicaOwnerKind.HPA, "max_replicas"): "spec.maxReplicas",
    ("quota", "hard"): "spec.hard",
}

GPU_QUOTA_PREFIX = "requests.nvidia.com/"
MAX_REPLICAS = 10_000
MAX_TTL_MINUTES = 7 * 24 * 60


@dataclass(frozen=True)
class QuotaHeadroom:
    name: str
    resource: str  # "requests.nvidia.com/gpu"
    hard: int
    used: int
    # GPUs that pending and running scale actions on the namespace's other deployments will ask
    # for: not in `used` yet, but promised. (This deployment's own actions in flight overlap with
    # a new request on it and are not counted here.)
    in_flight: int = 0
    in_flight_actions: int = 0

    @property
    def available(self) -> int:
        return self.hard - self.used - self.in_flight


@dataclass(frozen=True)
class ActionInFlight:
    """A pending or running scale action, as the quota check counts it."""

    deployment_id: int
    replicas: int  # asked for
    current_replicas: int  # what its deployment runs now
    gpu_per_replica: int


def gpus_promised(actions: Iterable[ActionInFlight]) -> int:
    """GPUs the actions in flight will add: per deployment, its highest ask over what it runs now."""
    highest: dict[int, ActionInFlight] = {}
    for a in actions:
        if a.deployment_id not in highest or a.replicas > highest[a.deployment_id].replicas:
            highest[a.deployment_id] = a
    return sum(
        gpus_needed(replicas=a.replicas, current_replicas=a.current_replicas, gpu_per_replica=a.gpu_per_replica)
        for a in highest.values()
    )


# --------------------------------------------------------------------------- input


def validate_request(*, replicas, mode: str, reason: str, ttl_minutes) -> tuple[int, str, str, int | None]:
    """Normalised (replicas, mode, reason, ttl_minutes); ApplicationError(400) naming the field."""
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        raise ApplicationError("replicas must be a whole number", field="replicas")
    if replicas < 0:
        raise ApplicationError("replicas must be 0 or more", field="replicas")
    if replicas > MAX_REPLICAS:
        raise ApplicationError(f"replicas must be at most {MAX_REPLICAS}", field="replicas")
    if mode not in MODES:
        raise ApplicationError(f"mode must be floor or pin, not {mode!r}", field="mode")
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("a reason is required: it goes in the audit log", field="reason")
    if ttl_minutes is not None:
        if isinstance(ttl_minutes, bool) or not isinstance(ttl_minutes, int):
            raise ApplicationError("ttl_minutes must be a whole number of minutes", field="ttl_minutes")
        if ttl_minutes <= 0:
            raise ApplicationError("ttl_minutes must be more than 0", field="ttl_minutes")
        if ttl_minutes > MAX_TTL_MINUTES:
            raise ApplicationError(f"ttl_minutes must be at most {MAX_TTL_MINUTES} (7 days)", field="ttl_minutes")
    return replicas, mode, reason, ttl_minutes


# --------------------------------------------------------------------------- target


def scale_target(deployment_name: str, owner: ReplicaOwner) -> ReplicaOwner:
    """The object a scale request writes: the replicas' owner (fleet.autoscalers.replica_owner).
    Two owners is a conflict (409): they fight, and writing either changes nothing for long."""
    if owner.kind == ReplicaOwnerKind.CONFLICT:
        raise ApplicationError(
            f"{deployment_name} is targeted by {owner.conflict_names}: they fight over its replicas; remove one first",
            status=409,
            extra={"autoscalers": [{"kind": api_kind(a.kind), "name": a.name} for a in owner.conflicts]},
        )
    return owner


def contributions(target_kind: str, mode: str, replicas: int, raise_max: bool) -> dict[str, tuple[str, int]]:
    """What a request wants of each field of its target."""
    if target_kind == ReplicaOwnerKind.DEPLOYMENT:
        return {"replicas": (mode, replicas)}
    wants: dict[str, tuple[str, int]] = {}
    if target_kind == ReplicaOwnerKind.SCALEDOBJECT:
        wants["paused_replicas" if mode == PIN else "min_replicas"] = (mode, replicas)
    elif target_kind == ReplicaOwnerKind.HPA:
        wants["min_replicas"] = (mode, replicas)
        if mode == PIN:
            wants["max_replicas"] = (PIN, replicas)
    else:
        raise ValueError(f"unknown target kind {target_kind!r}")
    if raise_max and "max_replicas" not in wants:
        wants["max_replicas"] = (FLOOR, replicas)
    return wants


# --------------------------------------------------------------------------- policy


def check_policy(
    *,
    namespace: str,
    namespace_writable: bool,
    target: ReplicaOwner,
    replicas: int,
    raise_max: bool,
    current_replicas: int,
    mode: str = FLOOR,
    gpu_resource: str,
    gpu_per_replica: int,
    quotas: Sequence[QuotaHeadroom],
) -> list[str]:
    """Refusals a request meets before anything is written (ApplicationError 409). Returns notes."""
    notes: list[str] = []
    if not namespace_writable:
        raise ApplicationError(
            f"namespace {namespace} is not in this cluster's allow-list: ScaleDeck may not change it",
            status=409,
            extra={"namespace": namespace},
        )
    if target.kind == ReplicaOwnerKind.HPA and replicas == 0:
        # The API server refuses minReplicas/maxReplicas 0 (unless the HPAScaleToZero alpha gate is
        # on): refuse here, so the request fails before anything is written rather than at the PATCH.
        what = "pinned to 0: its maxReplicas" if mode == PIN else "given a floor of 0: its minReplicas"
        raise ApplicationError(
            f"an HPA cannot be {what} must be at least 1 (scaling to zero needs KEDA)",
            field="replicas",
            status=409,
        )
    scaler = target.autoscaler
    if scaler is not None and replicas > scaler.max_replicas:
        if not raise_max:
            raise ApplicationError(
                f"{replicas} is above the autoscaler's max ({scaler.max_replicas}); "
                "ask again with raise_max to raise the max too",
                field="replicas",
                status=409,
                extra={"max_replicas": scaler.max_replicas, "requested": replicas},
                code="above_max",
            )
        notes.append(f"raises max from {scaler.max_replicas} to {replicas}")
    check_quota(
        replicas=replicas,
        current_replicas=current_replicas,
        gpu_resource=gpu_resource,
        gpu_per_replica=gpu_per_replica,
        quotas=quotas,
    )
    return notes


def quota_key(gpu_resource: str) -> str:
    return f"requests.{gpu_resource}"


def gpus_needed(*, replicas: int, current_replicas: int, gpu_per_replica: int) -> int:
    return max(replicas - current_replicas, 0) * gpu_per_replica


def check_quota(
    *, replicas: int, current_replicas: int, gpu_resource: str, gpu_per_replica: int, quotas: Sequence[QuotaHeadroom]
) -> None:
    """Refuse up front what the namespace quota would leave as a Pending pod."""
    needed = gpus_needed(replicas=replicas, current_replicas=current_replicas, gpu_per_replica=gpu_per_replica)
    if not needed or not gpu_resource:
        return
    for quota in quotas:
        if quota.resource != quota_key(gpu_resource):
            continue
        if needed > quota.available:
            detail = f"{quota.used} of {quota.hard} used"
            if quota.in_flight:
                count = quota.in_flight_actions
                detail += f", {quota.in_flight} promised to {count} action{'' if count == 1 else 's'} in flight"
            raise ApplicationError(
                f"{replicas - current_replicas} more replicas need {needed} {gpu_resource} but quota "
                f"{quota.name} has {max(quota.available, 0)} left ({detail})",
                field="replicas",
                status=409,
                extra={
                    "quota": quota.name,
                    "resource": quota.resource,
                    "hard": quota.hard,
                    "used": quota.used,
                    "in_flight": quota.in_flight,
                    "available": max(quota.available, 0),
                    "needed": needed,
                },
            )


# --------------------------------------------------------------------------- the override stack


@dataclass(frozen=True)
class Override:
    """An active time-boxed request on the target, oldest first."""

    action_id: int | None
    wants: Mapping[str, tuple[str, int]]


@dataclass(frozen=True)
class Resolution:
    before: dict
    after: dict
    baseline: dict
    write: dict  # only the fields whose value changes
    left_as_is: bool = False
    superseded: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def _evaluate(name: str, baseline, active: Sequence[Override]):
    pins = [o.wants[name][1] for o in active if name in o.wants and o.wants[name][0] == PIN]
    if pins:
        return pins[-1]
    candidates = [v for o in active if name in o.wants for op, v in [o.wants[name]] if op == FLOOR]
    if baseline is not None:
        candidates.append(baseline)
    return max(candidates) if candidates else None


def resolve(
    *,
    target_kind: str,
    current: Mapping[str, int | None],
    last_written: Mapping[str, int | None],
    last_baseline: Mapping[str, int | None],
    active: Sequence[Override],
    wants: Mapping[str, tuple[str, int]] | None = None,
    time_boxed: bool = False,
    restoring: Sequence[str] = (),
) -> Resolution:
    """The values to write, for a new request (`wants`) or for the end of an override (`restoring`).

    `current`: what the object holds now. `last_written` / `last_baseline`: the values of the
    last action ScaleDeck completed on this target. `active`: the other active overrides,
    oldest first (for a restore: without the one ending).
    """
    names = tuple(wants) if wants is not None else tuple(restoring)
    notes: list[str] = []
    changed_meanwhile = [n for n in names if n in last_written and last_written[n] != current.get(n)]
    baseline = {}
    for n in names:
        if n in last_written and n not in changed_meanwhile and n in last_baseline:
            baseline[n] = last_baseline[n]
        else:
            baseline[n] = current.get(n)
    before = {n: current.get(n) for n in names}

    if wants is None:
        if changed_meanwhile:
            what = ", ".join(f"{n} is {current.get(n)}, we wrote {last_written[n]}" for n in changed_meanwhile)
            return Resolution(
                before=before,
                after=dict(before),
                baseline=dict(before),
                write={},
                left_as_is=True,
                notes=(f"left as is: changed by someone else since ({what})",),
            )
        stack = list(active)
    else:
        for n in changed_meanwhile:
            notes.append(f"{n} was changed outside ScaleDeck (now {current.get(n)}): taken as the new baseline")
        stack = list(active)
        superseded: list[int] = []
        if time_boxed:
            stack.append(Override(None, dict(wants)))
        else:
            for n, (op, value) in wants.items():
                if n == "max_replicas" and op == FLOOR and baseline[n] is not None:
                    # raise_max only raises: a ceiling already above the request stays where it is.
                    baseline[n] = max(baseline[n], value)
                else:
                    baseline[n] = value
            # A permanent pin replaces the pins before it on the same fields.
            pinned = {n for n, (op, _) in wants.items() if op == PIN}
            keep = []
            for o in stack:
                if any(n in pinned and o.wants[n][0] == PIN for n in o.wants) and o.action_id is not None:
                    superseded.append(o.action_id)
                else:
                    keep.append(o)
            stack = keep
    after = {n: _evaluate(n, baseline[n], stack) for n in names}

    # Whatever the stack says, an autoscaler's min must not pass its max.
    if target_kind in (ReplicaOwnerKind.SCALEDOBJECT, ReplicaOwnerKind.HPA):
        low = after.get("min_replicas", current.get("min_replicas"))
        high = after.get("max_replicas", current.get("max_replicas"))
        if low is not None and high is not None and low > high:
            raise ApplicationError(
                f"that would set min replicas {low} above max replicas {high}; ask with raise_max to raise the max",
                field="replicas",
                status=409,
                extra={"min_replicas": low, "max_replicas": high},
                code="min_above_max",
            )
    for n in names:
        if wants is not None and n in wants and wants[n][0] == FLOOR and after[n] != wants[n][1]:
            notes.append(f"{n} is {after[n]}, not {wants[n][1]}: a higher floor is active")
        if wants is not None and n in wants and wants[n][0] == PIN and after[n] != wants[n][1]:
            notes.append(f"{n} is {after[n]}: a newer pin is active")
    write = {n: after[n] for n in names if after[n] != current.get(n)}
    if not write:
        notes.append("no change needed: the cluster already holds these values")
    return Resolution(
        before=before,
        after=after,
        baseline=baseline,
        write=write,
        superseded=tuple(superseded) if wants is not None else (),
        notes=tuple(notes),
    )


def below_baseline(resolution: Resolution, wants: Mapping[str, tuple[str, int]]) -> tuple[str, int, int] | None:
    """For a time-boxed floor: the field whose baseline is above the asked floor (it would do nothing)."""
    for n, (op, value) in wants.items():
        base = resolution.baseline.get(n)
        if op == FLOOR and n != "max_replicas" and base is not None and value < base:
            return n, value, base
    return None


def field_paths(target_kind: str, names: Iterable[str]) -> list[str]:
    return [FIELD_PATHS[(target_kind, n)] for n in names]


def pinned_after(target_kind: str, after: Mapping, autoscaler: AutoscalerFacts | None) -> int | None:
    """The KEDA paused-replicas count still in force once `after` is written, or None.

    A paused ScaledObject is not scaled by KEDA at all: the Deployment stays at that count
    whatever the min and max say."""
    if target_kind != ReplicaOwnerKind.SCALEDOBJECT:
        return None
    paused = after.get("paused_replicas", autoscaler.paused_replicas if autoscaler else None)
    return None if paused is None else int(paused)


def replicas_after(target_kind: str, after: Mapping, current_replicas: int, autoscaler: AutoscalerFacts | None) -> int:
    """Roughly how many replicas will run once the write lands (for cost and confirmation)."""
    if target_kind == ReplicaOwnerKind.DEPLOYMENT:
        return int(after.get("replicas", current_replicas) or 0)
    pinned = pinned_after(target_kind, after, autoscaler)
    if pinned is not None:
        return pinned
    low = after.get("min_replicas", autoscaler.min_replicas if autoscaler else 0)
    high = after.get("max_replicas", autoscaler.max_replicas if autoscaler else current_replicas)
    return min(max(current_replicas, int(low or 0)), int(high or current_replicas))


def pin_notes(*, target: ReplicaOwner, wants: Mapping[str, tuple[str, int]], after: Mapping) -> list[str]:
    """Say plainly when a floor (or a raised max) changes nothing now because KEDA is paused."""
    pinned = pinned_after(target.kind, after, target.autoscaler)
    op, floor = wants.get("min_replicas", (PIN, None))
    if pinned is None or op != FLOOR:
        return []
    return [
        f"no effect while pinned: ScaledObject {target.name} is paused at {pinned} replicas "
        f"({KEDA_PAUSED_ANNOTATION}), so KEDA does not scale it and a floor of {floor} changes nothing "
        f"now; it stays at {pinned} replicas. The floor takes effect once the pin is removed; "
        f"to run {floor} replicas now, ask with mode pin."
    ]


# --------------------------------------------------------------------------- UI and quotas


def needs_confirmation(*, current_replicas: int, replicas: int) -> str | None:
    """Why the browser asks "are you sure?" first, or None."""
    if replicas == 0 and current_replicas > 0:
        return f"This scales to zero: all {current_replicas} replicas stop serving."
    if replicas > 2 * max(current_replicas, 1):
        return f"This more than doubles the replicas ({current_replicas} -> {replicas}): GPUs and cost grow with it."
    return None


def cost_per_hour(per_replica: Decimal | None, replicas: int) -> Decimal | None:
    if per_replica is None:
        return None
    return (per_replica * replicas).quantize(Decimal("0.01"))


def plan_quota_change(
    *, current_hard: Mapping[str, int], used: Mapping[str, int], requested: Mapping, force: bool
) -> tuple[dict, dict, list[str]]:
    """(before, after, notes) for a change to a quota's GPU hard limits; ApplicationError otherwise.

    A value of None removes the entry (the namespace is then not limited on that resource): it
    cannot go below usage, so it needs no force, and removing an entry the quota lacks changes nothing.
    """
    if not isinstance(requested, Mapping) or not requested:
        raise ApplicationError('hard must be an object such as {"requests.nvidia.com/gpu": 16}', field="hard")
    clean: dict[str, int | None] = {}
    for key, value in requested.items():
        problem = quota_key_error(key) or quota_value_error(key, value)
        if problem:
            raise ApplicationError(problem, field="hard")
        clean[key] = value
    notes = []
    for key, value in clean.items():
        in_use = int(used.get(key, 0) or 0)
        if value is None:
            if key in current_hard:
                notes.append(f"removes the {key} limit ({current_hard[key]}); {in_use} in use")
            continue
        if value < in_use:
            if not force:
                raise ApplicationError(
                    f"{key} {value} is below current usage {in_use}: running pods keep their GPUs but new "
                    "ones would not start; send force to do it anyway",
                    field="hard",
                    status=409,
                    extra={"resource": key, "requested": value, "used": in_use},
                    code="below_usage",
                )
            notes.append(f"forced: {key} {value} is below current usage {in_use}")
    before = {k: current_hard.get(k) for k in clean}
    return before, clean, notes
