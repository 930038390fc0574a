"""Autoscaler policy edits as audited actions: preview (dry run), request, carry out, revert.

An edit (`scaling.autoscaler_policy`) is validated against the autoscaler as the cluster holds it
now, so the dry run's diff and merge patch are exactly what a worker would send if nothing changes
in between. A real edit is a `ScaleAction` with operation `policy`, carried out by the worker
through the same claim / intent / write / record protocol as a scale (scaling/services/execution.py):
it re-reads the spec, rebuilds the edit from the recorded `changes` against what it read (so a
409 retry or a recovery recomputes from the cluster, not from a stale preview), records the
intended spec, then sends one JSON merge patch carrying the resourceVersion it read.

The action's `before` / `after` hold the top-level `spec` keys the patch changed, before and
after: a revert writes `before` back (keys that did not exist are removed with null) as a new,
audited `policy` action with `request={"revert_of": id}`.
"""

from __future__ import annotations

from core.errors import ApplicationError
from fleet.autoscalers import ReplicaOwnerKind
from fleet.backends.base import AutoscalerFacts, NotSupported
from fleet.models import ModelDeployment
from scaling import autoscaler_policy
from scaling.autoscaler_policy import PolicyEdit, PolicyEditError
from scaling.models import ScaleAction
from scaling.services import cluster as cluster_access
from scaling.services.actions import scale_action_dispatch
from scaling.services.actors import Actor


def deployment_autoscaler(deployment: ModelDeployment) -> AutoscalerFacts:
    """The one autoscaler an edit changes: the replicas' owner, a ScaledObject or a plain HPA (never
    KEDA's own HPA)."""
    owner = cluster_access.deployment_owner(deployment)
    if owner.kind == ReplicaOwnerKind.CONFLICT:
        raise ApplicationError(
            f"{deployment.namespace}/{deployment.name} has two autoscalers "
            f"({owner.conflict_names}); remove one before editing the policy",
            status=409,
        )
    if owner.autoscaler is None:
        raise ApplicationError(f"{deployment.namespace}/{deployment.name} has no autoscaler to edit", status=409)
    return owner.autoscaler


def edit_for(kind: str, values: dict, changes: dict, resource_version: str) -> PolicyEdit:
    """The validated edit of the spec in `values` (as read by `read_autoscaler_spec`)."""
    if not isinstance(changes, dict) or not changes:
        raise PolicyEditError("name at least one setting to change", field="changes")
    build = autoscaler_policy.scaledobject_edit if kind == ReplicaOwnerKind.SCALEDOBJECT else autoscaler_policy.hpa_edit
    return build(
        values.get("spec") or {},
        changes,
        resource_version=resource_version,
        labels=values.get("labels"),
        annotations=values.get("annotations"),
    )


def autoscaler_policy_preview(*, deployment: ModelDeployment, changes: dict) -> tuple[AutoscalerFacts, PolicyEdit]:
    """Dry run: the merge patch and diff the edit would send now. Raises PolicyEditError (400, naming
    the field) for anything the schema refuses; nothing is stored or written."""
    _check_writable(deployment)
    autoscaler = deployment_autoscaler(deployment)
    kind = autoscaler.kind
    writer = cluster_access.cluster_writer(deployment.cluster)
    try:
        state = writer.read_autoscaler_spec(kind, deployment.namespace, autoscaler.name)
    except NotSupported as exc:
        raise ApplicationError(str(exc), status=409) from None
    return autoscaler, edit_for(kind, state.values, changes, state.resource_version)


def _check_writable(deployment: ModelDeployment) -> None:
    if not deployment.cluster.namespace_writable(deployment.namespace):
        raise ApplicationError(f"namespace {deployment.namespace} is not in this cluster's allow-list", status=409)


def autoscaler_policy_request(
    *, deployment: ModelDeployment, changes: dict, reason: str, actor: Actor, source: str, dispatch: bool = True
) -> tuple[ScaleAction, PolicyEdit]:
    """Validate the edit against the live autoscaler, then record a pending `policy` action for a worker.
    A refused edit raises before anything is stored."""
    autoscaler, edit = autoscaler_policy_preview(deployment=deployment, changes=changes)
    action = ScaleAction.objects.create(
        **actor.audit_fields(),
        source=source,
        operation=ScaleAction.Operation.POLICY,
        cluster_id=deployment.cluster_id,
        namespace=deployment.namespace,
        deployment=deployment,
        request={"changes": changes},
        target_kind=autoscaler.kind,
        target_name=autoscaler.name,
        reason=(reason or "").strip() or "(no reason given)",
        notes=[edit.warning] if edit.warning else [],
    )
    if dispatch:
        scale_action_dispatch(action.pk)
    return action, edit


def autoscaler_policy_revert(
    *, action: ScaleAction, reason: str, actor: Actor, source: str, dispatch: bool = True
) -> ScaleAction:
    """Write back the `before` values a succeeded policy edit recorded, as a new audited action."""
    if action.operation != ScaleAction.Operation.POLICY or action.status != ScaleAction.Status.SUCCEEDED:
        raise ApplicationError("only a succeeded autoscaler policy edit can be reverted", status=409)
    if not action.fields:
        raise ApplicationError("this edit wrote nothing; there is nothing to revert", status=409)
    if action.deployment is None:
        raise ApplicationError("the deployment of this edit is gone", status=409)
    _check_writable(action.deployment)
    revert = ScaleAction.objects.create(
        **actor.audit_fields(),
        source=source,
        operation=ScaleAction.Operation.POLICY,
        cluster_id=action.cluster_id,
        namespace=action.namespace,
        deployment_id=action.deployment_id,
        request={"revert_of": action.pk},
        target_kind=action.target_kind,
        target_name=action.target_name,
        reason=(reason or "").strip() or f"revert of action #{action.pk}",
    )
    if dispatch:
        scale_action_dispatch(revert.pk)
    return revert


def policy_write(action: ScaleAction, values: dict, resource_version: str) -> tuple[dict, dict, dict, list[str]]:
    """For the worker: (before, after, spec to hold, notes) of `action` against the spec just read.

    `before`/`after` are the top-level spec keys that change. Raises ApplicationError when the edit
    is refused by the schema against what the cluster holds now (the action then fails, unwritten)."""
    current = values.get("spec") or {}
    notes: list[str] = []
    if "revert_of" in action.request:
        original = ScaleAction.objects.filter(pk=action.request["revert_of"]).values("before").first()
        if original is None:
            raise ApplicationError("the edit to revert is gone")
        restore = (original["before"] or {}).get("spec") or {}
        absent = (original["before"] or {}).get("absent") or []
        target = {k: v for k, v in current.items() if k not in absent}
        target.update(restore)
    else:
        edit = edit_for(action.target_kind, values, action.request.get("changes") or {}, resource_version)
        target = autoscaler_policy.apply_merge_patch(current, edit.patch["spec"])
        if edit.warning:
            notes.append(edit.warning)
    keys = sorted(set(autoscaler_policy.merge_patch_between(current, target)))
    before = {"spec": {k: current[k] for k in keys if k in current}, "absent": [k for k in keys if k not in current]}
    after = {"spec": {k: target[k] for k in keys if k in target}}
    return before, after, target, notes
