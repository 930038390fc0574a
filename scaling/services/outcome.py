"""What a scale action writes: the absolute values, computed from what the cluster holds now and
from every other active override of the same object (scaling/decisions.py decides; this gathers
its inputs). Reads the database, never the cluster: scaling/services/execution.py reads and writes."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import ApplicationError
from fleet.backends.base import ObjectState
from scaling import decisions
from scaling.models import ScaleAction
from scaling.services import policy
from scaling.services.stack import override_wants, stack_inputs


@dataclass
class Outcome:
    before: dict
    after: dict
    baseline: dict = field(default_factory=dict)
    write: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    superseded: tuple[int, ...] = ()
    restores: ScaleAction | None = None


def action_outcome(action: ScaleAction, state: ObjectState, *, now) -> Outcome:
    """What `action` changes on its object, from what the cluster holds now (`state`): the values
    before and after, what to write (nothing when the object already holds them) and why."""
    if action.operation == ScaleAction.Operation.POLICY:
        # The intent records the whole spec to hold, so a re-read can tell whether it landed.
        before, after, target, notes = policy.policy_write(action, state.values, state.resource_version)
        changed = bool(after["spec"] or before["absent"])
        return Outcome(
            before=before,
            after=after,
            write={"spec": target} if changed else {},
            notes=notes if changed else [*notes, "no change needed: the autoscaler holds these values"],
        )
    if action.operation == ScaleAction.Operation.QUOTA:
        current = dict(state.values.get("hard") or {})
        # None removes an entry: sent as null, which a merge patch deletes.
        requested = {k: None if v is None else int(v) for k, v in (action.request.get("hard") or {}).items()}
        merged = {**current, **requested}
        changed = any(current.get(k) != v for k, v in requested.items())
        return Outcome(
            before={"hard": {k: current.get(k) for k in requested}},
            after={"hard": {k: merged[k] for k in requested}},
            write={"hard": merged} if changed else {},
            notes=[] if changed else ["no change needed: the quota already holds these values"],
        )

    restores = None
    if action.operation == ScaleAction.Operation.RESTORE:
        restores = action.restores.first()
        if restores is None:
            raise ApplicationError("the override to restore is gone")
        names = tuple(override_wants(restores))
        exclude = [restores.id]
    else:
        names = ()
        exclude = [action.id]
    stack = stack_inputs(
        cluster_id=action.cluster_id,
        namespace=action.namespace,
        target_kind=action.target_kind,
        target_name=action.target_name,
        now=now,
        exclude_ids=exclude,
    )
    if restores is not None:
        resolution = decisions.resolve(
            target_kind=action.target_kind,
            current=state.values,
            last_written=stack.last_written,
            last_baseline=stack.last_baseline,
            active=stack.active,
            restoring=names,
        )
    else:
        resolution = decisions.resolve(
            target_kind=action.target_kind,
            current=state.values,
            last_written=stack.last_written,
            last_baseline=stack.last_baseline,
            active=stack.active,
            wants=override_wants(action),
            time_boxed=action.expires_at is not None,
        )
    return Outcome(
        before=resolution.before,
        after=resolution.after,
        baseline=resolution.baseline,
        write=resolution.write,
        notes=list(resolution.notes),
        superseded=resolution.superseded,
        restores=restores,
    )
