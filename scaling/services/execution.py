"""Carrying out a pending action: claim it, read the object, record the intent, write, record.

Called by the Celery task `scaling.tasks.apply_scale_action` and inline by `manage.py
scaling_tick`. Safe to call twice for one action: only the caller whose conditional UPDATE moves
it from pending to running goes on.

The write protocol
------------------
A worker can die at any instant: between two SQL statements, with a PATCH on the wire, after the
API server applied it and before the answer came back. The protocol makes every such crash
recoverable from the database and one read of the object, and keeps the audit true:

1. Claim: one conditional UPDATE (pending -> running) in a short transaction. It names the claiming
   process (`claimed_by`), and is refused while another action on the same object is running
   (see `_claim`).
2. Read the object and decide the absolute values to write (`outcome.action_outcome`). If something must be
   written, record the intent on the action first (`_record_intent`, conditional on still owning
   the claim): the values read and their resourceVersion, the values about to be written, and the
   before/after/baseline the action will report. Then check expiry: a time-boxed action whose time
   ran out before its write is sent fails with "nothing was written", which is then true. Expiry is
   never checked after a write.
3. Write the absolute values as a merge patch carrying the resourceVersion read; on 409 Conflict
   re-read, re-decide, record the new intent and try again, with backoff.
4. Record the outcome with the Kubernetes answer: one conditional UPDATE (running -> succeeded or
   failed) that lands only if this claim still owns the action (see `_finish`).

Recovery. A run that finds an intent left by an earlier claim (the worker was killed, or the answer
to the write never came and the action went back to pending) reads the object before anything
else and asks `scaling.write_intent.judge`:
- the object holds the intended values on a newer resourceVersion: the write landed. The action
  ends `succeeded` with the recorded `before` and `baseline`, so its restore (TTL expiry, the end of
  a rule's window) puts the original value back, whether or not the action has expired meanwhile;
- the resourceVersion is the one read: the write never landed, and the action runs as if fresh
  (an expired one fails, truthfully, with "nothing was written");
- the object moved on and holds other values: unknown. The action runs again from what the
  cluster holds now, and the audit says an earlier write may have landed, never "nothing was written".
A crash before the intent is recorded needs nothing: no write was sent.

Who runs the recovery: the redelivered message of a killed pool process, or a restarted worker
(`actions_recover_lost`), take over a claim whose process is provably gone (`workers.py`) at once;
for claimers on other hosts the reconciler puts a running action back to pending after
STUCK_RUNNING_SECONDS (`scaling/services/tick.py`) and sends it again.

No database transaction is open while the cluster is read or written. An API call may take up
to its timeout on every try, and a transaction held across it would be, on SQLite (the demo, a
single file with IMMEDIATE transactions), the one write lock of the whole application, and on
PostgreSQL a long transaction holding a row lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from core.errors import ApplicationError
from fleet.backends.base import BackendError, ConflictError, ObjectState
from fleet.models import ModelDeployment, NamespaceQuota
from scaling import autoscaler_policy, decisions
from scaling.models import ScaleAction
from scaling.services import cluster as cluster_access
from scaling.services import workers
from scaling.services.outcome import Outcome, action_outcome
from scaling.write_intent import Intent, Verdict, describe, judge

logger = logging.getLogger(__name__)

S = ScaleAction.Status
CONFLICT_TRIES = 3
# Pauses between tries after a 409 Conflict: short, the other writer is usually done by then.
CONFLICT_BACKOFF_SECONDS = (0.1, 0.3, 0.9)
# Past this a running action has lost its worker (its calls to the cluster are bounded by the client's
# timeouts, CONFLICT_TRIES reads and writes: about a minute): the reconciler puts it back to pending,
# and it no longer keeps other actions off its object.
STUCK_RUNNING_SECONDS = 300


class TransientActionError(Exception):
    """The cluster could not be reached; the action is pending again and may be retried."""


class TargetBusy(Exception):
    """Another action on the same object is running; this one is still pending: try again shortly."""


class ClaimLost(Exception):
    """The reconciler or another worker took this claim over before its write: stop, write nothing."""


def scale_action_execute(*, action_id: int, sleep: Callable[[float], None] = time.sleep) -> ScaleAction | None:
    """Apply a pending action. Returns it finished, or None when someone else claimed it.

    Raises TargetBusy (still pending, nothing done) while another action on the same object is
    running, and TransientActionError (the action is back to pending) when a retry may help;
    every other failure ends the action `failed` with a one-line error.
    """
    claim = _claim(action_id)
    if claim is None:
        return None  # another worker, or a retry of this one, got there first
    action = ScaleAction.objects.select_related("cluster").get(id=action_id)
    try:
        _apply(action, claim, sleep)
    except ClaimLost:
        logger.warning("action %s: claim %s was taken over before its write; nothing written", action.id, claim)
        return None
    except ApplicationError as exc:
        _fail(action, claim, exc.message)
    except ConflictError:
        _fail(action, claim, f"the object kept changing under us (409 Conflict {CONFLICT_TRIES} times)", status=409)
    except BackendError as exc:
        if exc.transient:
            # Push the next attempt forward before re-raising, so the reconciler waits its turn.
            _finish(action, claim, status=S.PENDING, error=f"retrying: {exc}"[:500], dispatched_at=timezone.now())
            raise TransientActionError(str(exc)) from exc
        _fail(action, claim, str(exc), status=exc.status)
    except SoftTimeLimitExceeded:
        _fail(action, claim, "timed out: the cluster did not answer within the task's time limit")
        raise
    except Exception as exc:
        _fail(action, claim, f"internal error: {type(exc).__name__}: {exc}")
        raise
    return ScaleAction.objects.get(id=action_id)


def scale_action_fail(*, action_id: int, error: str) -> bool:
    """Give up on an action that is not finished (retries exhausted, time limit).

    When a write was sent and never confirmed (its intent is recorded, the cluster stopped
    answering), the error says it may have landed: nobody could read the object to tell."""
    line = error.splitlines()[0] if error else "failed"
    intent = Intent.from_json(ScaleAction.objects.filter(id=action_id).values_list("intent", flat=True).first() or {})
    if intent is not None:
        line = f"{line}; a write of {describe(intent)} was sent and may have landed (the cluster could not be read)"
    return bool(
        ScaleAction.objects.filter(id=action_id, status__in=(S.PENDING, S.RUNNING)).update(
            status=S.FAILED, error=line[:500], finished_at=timezone.now()
        )
    )


def _claim(action_id: int) -> int | None:
    """Move the action from pending to running; return the claim (its new `attempts`), or None.

    Two actions on one object must not run at once: each computes its write from the override
    stack in the audit and from what the cluster holds, and records the result there; interleaved,
    the second would take the first one's write for a change made outside ScaleDeck. So the claim
    is refused (TargetBusy) while another action on the object is running. The check is part of
    the conditional UPDATE; on PostgreSQL two claims on different rows could each miss the other's
    uncommitted claim, so they first lock the deployment's (or quota's) row, held only for this
    short transaction. SQLite runs one write transaction at a time (IMMEDIATE): nothing to add.

    A running action whose claiming process is provably gone (killed on this host) is taken over
    the same way, compare-and-set on the dead claim: it is what the redelivered message of a killed
    pool process finds.
    """
    now = timezone.now()
    me = workers.this_process()
    with transaction.atomic():
        row = (
            ScaleAction.objects.filter(id=action_id)
            .values(
                "status",
                "attempts",
                "claimed_by",
                "cluster_id",
                "namespace",
                "target_kind",
                "target_name",
                "deployment_id",
                "quota_id",
            )
            .first()
        )
        if row is None:
            return None
        if row["status"] == S.PENDING:
            mine = ScaleAction.objects.filter(id=action_id, status=S.PENDING)
        elif row["status"] == S.RUNNING and workers.process_is_gone(row["claimed_by"]):
            mine = ScaleAction.objects.filter(
                id=action_id, status=S.RUNNING, attempts=row["attempts"], claimed_by=row["claimed_by"]
            )
            logger.warning("action %s: its claimer %s is gone; taking it over", action_id, row["claimed_by"])
        else:
            return None
        _lock_target(deployment_id=row["deployment_id"], quota_id=row["quota_id"])
        other_running = (
            ScaleAction.objects.on_target(
                cluster_id=OuterRef("cluster_id"),
                namespace=OuterRef("namespace"),
                target_kind=OuterRef("target_kind"),
                target_name=OuterRef("target_name"),
            )
            .filter(status=S.RUNNING, started_at__gt=now - timedelta(seconds=STUCK_RUNNING_SECONDS))
            .exclude(id=OuterRef("id"))
        )
        claimed = mine.exclude(Exists(other_running)).update(
            status=S.RUNNING, started_at=now, attempts=F("attempts") + 1, claimed_by=me
        )
        if claimed != 1:
            if mine.exists():
                raise TargetBusy(f"another action on {row['target_kind']}/{row['target_name']} is running")
            return None
        return ScaleAction.objects.values_list("attempts", flat=True).get(id=action_id)


def _lock_target(*, deployment_id: int | None, quota_id: int | None) -> None:
    # NO KEY UPDATE: serialises claims with each other, yet lets rows referring to this one (a new
    # action's foreign key takes KEY SHARE) be inserted meanwhile. SQLite ignores it.
    if deployment_id:
        list(ModelDeployment.objects.select_for_update(no_key=True).filter(id=deployment_id).values_list("id"))
    elif quota_id:
        list(NamespaceQuota.objects.select_for_update(no_key=True).filter(id=quota_id).values_list("id"))


def _finish(action: ScaleAction, claim: int, **fields) -> bool:
    """Record the end of this claim. False when it no longer owns the action.

    The reconciler puts a running action whose worker looks lost back to pending, and another
    worker may then claim it (`attempts` moves on): this claim's outcome must not overwrite
    theirs. Back to pending but not claimed again, the outcome is still this claim's to record
    (its write did land), and the re-sent message then finds nothing pending.
    """
    done = ScaleAction.objects.filter(id=action.id, status__in=(S.RUNNING, S.PENDING), attempts=claim).update(**fields)
    if done != 1:
        logger.warning(
            "action %s: claim %s was taken over (the reconciler re-sent it); outcome dropped", action.id, claim
        )
    return done == 1


def _fail(action: ScaleAction, claim: int, error: str, status: int | None = None) -> None:
    line = (error.splitlines()[0] if error else "failed")[:500]
    _finish(
        action, claim, status=S.FAILED, error=line, finished_at=timezone.now(), response_code=status, response_body=line
    )


def _apply(action: ScaleAction, claim: int, sleep) -> None:
    cluster = action.cluster
    cluster.refresh_from_db()
    if not cluster.namespace_writable(action.namespace):
        raise ApplicationError(f"namespace {action.namespace} is not in this cluster's allow-list")
    writer = cluster_access.cluster_writer(cluster)
    state: ObjectState | None = None
    doubt = ""  # set when an earlier write may have landed: the audit must not say "nothing was written"
    earlier = Intent.from_json(action.intent)
    if earlier is not None:
        # An earlier claim recorded a write and never recorded its outcome: find out from the object.
        state = _read(writer, action)
        verdict = judge(earlier, current=state.values, resource_version=state.resource_version)
        if verdict is Verdict.LANDED:
            _record_landed(action, claim, earlier, state)
            return
        if verdict is Verdict.UNKNOWN:
            doubt = (
                f"an earlier try may have written {describe(earlier)} (resourceVersion {earlier.resource_version}); "
                f"the object has changed since (resourceVersion {state.resource_version}) and holds other values"
            )
    _check_expiry(action, doubt)
    for attempt in range(CONFLICT_TRIES):
        # No transaction here (see the module docstring): the claim keeps other actions off this
        # object, and the resourceVersion makes a concurrent change outside ScaleDeck a 409.
        try:
            if state is None:
                state = _read(writer, action)
                if (
                    earlier is not None
                    and judge(earlier, current=state.values, resource_version=state.resource_version) is Verdict.LANDED
                ):
                    # Our 409 was the earlier claim's write landing late (its worker was slow, not dead).
                    _record_landed(action, claim, earlier, state)
                    return
            outcome = action_outcome(action, state, now=timezone.now())
            if doubt:
                outcome.notes.insert(0, f"{doubt}: carried out again from what it holds now")
            new_rv = state.resource_version
            if outcome.write:
                _record_intent(action, claim, state, outcome)
                _check_expiry(action, doubt)  # before the write, never after it
                new_rv = _write(writer, action, state, outcome.write)
        except ConflictError:
            if attempt + 1 >= CONFLICT_TRIES:
                raise
            logger.info("action %s: 409 Conflict, re-reading (try %s)", action.id, attempt + 2)
            state = None
            sleep(CONFLICT_BACKOFF_SECONDS[attempt])
            continue
        _record_success(action, claim, state, outcome, new_rv)
        return


def _read(writer, action: ScaleAction) -> ObjectState:
    if action.operation == ScaleAction.Operation.POLICY:  # the whole spec: a policy edit rewrites any of it
        return writer.read_autoscaler_spec(action.target_kind, action.namespace, action.target_name)
    return writer.read_object(action.target_kind, action.namespace, action.target_name)


def _check_expiry(action: ScaleAction, doubt: str) -> None:
    if action.operation != ScaleAction.Operation.SCALE or not action.expires_at:
        return
    if action.expires_at <= timezone.now():
        if doubt:
            raise ApplicationError(f"expired before it could be applied; not written again: {doubt}")
        raise ApplicationError("expired before it could be applied; nothing was written")


def _record_intent(action: ScaleAction, claim: int, state: ObjectState, outcome: Outcome) -> None:
    """Step 2 of the protocol: what is about to be written, stored before the write is sent.

    Conditional on this claim still owning the action and it still running: a claim the reconciler
    or another worker took over must not write at all (ClaimLost)."""
    intent = Intent(
        claim=claim,
        resource_version=state.resource_version,
        read=state.values,
        write=outcome.write,
        before=outcome.before,
        after=outcome.after,
        baseline=outcome.baseline,
        notes=tuple(outcome.notes),
        superseded=tuple(outcome.superseded),
    )
    recorded = ScaleAction.objects.filter(id=action.id, status=S.RUNNING, attempts=claim).update(
        intent=intent.as_json(), resource_version_before=state.resource_version
    )
    if recorded != 1:
        raise ClaimLost(action.id)
    action.intent = intent.as_json()


def _record_landed(action: ScaleAction, claim: int, intent: Intent, state: ObjectState) -> None:
    """Recovery: the earlier claim's write is on the object. Record it as that claim would have."""
    note = (
        f"recovered: the worker was lost after writing {describe(intent)}; the object held it at "
        f"resourceVersion {state.resource_version} (it was {intent.resource_version} before the write)"
    )
    outcome = Outcome(
        before=intent.before,
        after=intent.after,
        baseline=intent.baseline,
        write=intent.write,
        notes=[*intent.notes, note],
        superseded=intent.superseded,
        restores=action.restores.first() if action.operation == ScaleAction.Operation.RESTORE else None,
    )
    body = f"write found on re-read at resourceVersion {state.resource_version} (the answer was lost)"
    _record_success(action, claim, None, outcome, state.resource_version, rv_before=intent.resource_version, body=body)


def _write(writer, action: ScaleAction, state: ObjectState, write: dict) -> str:
    kind, ns, name, rv = action.target_kind, action.namespace, action.target_name, state.resource_version
    if action.operation == ScaleAction.Operation.POLICY:
        patch = autoscaler_policy.merge_patch_between(state.values.get("spec") or {}, write["spec"])
        return writer.patch_autoscaler_spec(kind, ns, name, patch, resource_version=rv)
    if kind == ScaleAction.TargetKind.DEPLOYMENT:
        return writer.scale_deployment(ns, name, int(write["replicas"]), resource_version=rv)
    if kind == ScaleAction.TargetKind.SCALEDOBJECT:
        return writer.patch_scaledobject(ns, name, resource_version=rv, **write)
    if kind == ScaleAction.TargetKind.HPA:
        return writer.patch_hpa(ns, name, resource_version=rv, **write)
    if kind == ScaleAction.TargetKind.QUOTA:
        return writer.patch_quota(ns, name, write["hard"], resource_version=rv)
    raise ApplicationError(f"unknown target kind {kind!r}")


def _record_success(
    action: ScaleAction,
    claim: int,
    state: ObjectState | None,
    outcome: Outcome,
    new_rv: str,
    *,
    rv_before: str = "",
    body: str = "",
) -> None:
    now = timezone.now()
    rv_before = rv_before or (state.resource_version if state is not None else "")
    with transaction.atomic():
        if _finish(action, claim, **_success_fields(action, outcome, rv_before, new_rv, body=body, now=now)):
            _record_effects(action, outcome, new_rv, now=now)


def _success_fields(action: ScaleAction, outcome: Outcome, rv_before: str, new_rv: str, *, body: str, now) -> dict:
    wrote = bool(outcome.write)
    names = outcome.write if action.target_kind != "quota" else ({"hard": None} if wrote else {})
    if body:
        code = None  # the write landed but its answer never reached us
    else:
        code = 200 if wrote else None
        body = f"resourceVersion {new_rv}" if wrote else "nothing written"
    return dict(
        status=S.SUCCEEDED,
        before=outcome.before,
        after=outcome.after,
        baseline=outcome.baseline,
        fields=_written_paths(action, outcome, names),
        notes=[*action.notes, *(n for n in outcome.notes if n not in action.notes)],
        error="",
        finished_at=now,
        response_code=code,
        response_body=body[:500],
        resource_version_before=rv_before,
        resource_version_after=new_rv,
    )


def _record_effects(action: ScaleAction, outcome: Outcome, new_rv: str, *, now) -> None:
    """What else a success changes: the synced rows mirror the write, and ended overrides are marked."""
    if outcome.write:
        cluster_access.mirror_write(
            cluster_id=action.cluster_id,
            namespace=action.namespace,
            target_kind=action.target_kind,
            target_name=action.target_name,
            after=_mirrored(action, outcome),
            rv=new_rv,
        )
    if outcome.superseded:
        ScaleAction.objects.filter(id__in=outcome.superseded, restored_at__isnull=True).update(
            restored_at=now, restore_action=action
        )
    if outcome.restores is not None:
        ScaleAction.objects.filter(id=outcome.restores.id, restored_at__isnull=True).update(restored_at=now)


def _written_paths(action: ScaleAction, outcome: Outcome, names) -> list[str]:
    if action.operation != ScaleAction.Operation.POLICY:
        return decisions.field_paths(action.target_kind, names)
    if not outcome.write:
        return []
    keys = {*(outcome.after.get("spec") or {}), *(outcome.before.get("absent") or ())}
    return sorted(f"spec.{key}" for key in keys)


def _mirrored(action: ScaleAction, outcome: Outcome) -> dict:
    """The values the synced rows take from a write (a policy edit: its floor and ceiling)."""
    if action.target_kind == ScaleAction.TargetKind.QUOTA:
        return outcome.write
    if action.operation != ScaleAction.Operation.POLICY:
        return outcome.after
    spec = outcome.write.get("spec") or {}
    keda = action.target_kind == ScaleAction.TargetKind.SCALEDOBJECT
    keys = ("minReplicaCount", "maxReplicaCount") if keda else ("minReplicas", "maxReplicas")
    return {name: spec[key] for name, key in zip(("min_replicas", "max_replicas"), keys, strict=True) if key in spec}
