"""Repartitioning one node to a MIG plan's layout: an audited multi-step action, safe to stop and resume.

Steps, in order: cordon (once the cluster's mig-parted ConfigMap is seen to offer the layout);
drain (policy/v1 evictions, which honour PodDisruptionBudgets and each pod's
terminationGracePeriodSeconds; never a delete); set `nvidia.com/mig.config`; wait for the GPU
operator's `nvidia.com/mig.config.state` to turn `pending` and then `success`; uncordon; verify
the node advertises the plan's `nvidia.com/mig-*` devices.

Why it is built this way:
- Each step is idempotent and its status is stored on the row before the next begins, so a run
  that stops (a worker killed, an operator pressing Stop, a PDB refusing) resumes at the first
  step not done, and re-doing a step that was half done is harmless (cordoning twice, relabelling
  a node that already carries the label).
- A run is a slice of work: it claims the row (pending -> running, one conditional UPDATE),
  goes as far as it can without waiting, and hands the row back as pending with the seconds to
  wait (`RunResult.wait_seconds`). The Celery task sends itself again after that; no worker sits
  for the minutes a drain or a repartition takes, and no transaction is held across a call.
- A 429 from the eviction API is a PodDisruptionBudget saying no: the action pauses, naming it,
  before the label is touched. A `success` state standing from the old layout proves nothing:
  the wait accepts `success` only after it has seen `pending` since the relabel. On `failed` the
  node stays cordoned: pods must not land on GPUs in an unknown layout.
- The ready floor is checked when the action is asked for: draining must not take a deployment
  below its autoscaler's minimum (or below one ready replica without an autoscaler).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import AuditKind
from core.errors import ApplicationError
from fleet.autoscalers import replica_owner
from fleet.backends.base import BackendError, ConflictError, EvictionRefused
from fleet.mig_parted import DEFAULT_CONFIG_MAP, MigPartedConfigError
from fleet.models import GpuNode, Pod
from mig.models import ClusterMigConfig, MigApplication, MigPlan
from scaling.services.actors import Actor

CONFIG_LABEL = "nvidia.com/mig.config"
STATE_LABEL = "nvidia.com/mig.config.state"
MIG_PREFIX = "nvidia.com/mig-"
STEPS = (
    ("cordon", "Cordon the node"),
    ("drain", "Drain its pods through the eviction API"),
    ("relabel", "Set nvidia.com/mig.config"),
    ("wait", "Wait for the GPU operator to apply the layout"),
    ("uncordon", "Uncordon the node"),
    ("verify", "Check the MIG devices the node advertises"),
)
Status = MigApplication.Status


@dataclass(frozen=True)
class RunResult:
    status: str
    wait_seconds: float | None = None  # set when the run handed the action back to wait


class _Halt(Exception):
    def __init__(self, message: str, status: str = Status.PAUSED):
        super().__init__(message)
        self.status = status


class _Wait(Exception):
    pass


# Defaults; a deployment overrides them in its settings module. The GPU operator takes minutes
# to repartition (it drains its own GPU clients and may reboot GPUs): half an hour before giving up.
DEFAULT_POLL_SECONDS = 10
DEFAULT_DRAIN_TIMEOUT_SECONDS = 900  # longer than a 600 s termination grace
DEFAULT_STATE_TIMEOUT_SECONDS = 1800


def _timeouts() -> dict[str, float]:
    return {
        "poll": float(getattr(settings, "SCALEDECK_MIG_POLL_SECONDS", DEFAULT_POLL_SECONDS)),
        "drain": float(getattr(settings, "SCALEDECK_MIG_DRAIN_TIMEOUT_SECONDS", DEFAULT_DRAIN_TIMEOUT_SECONDS)),
        "wait": float(getattr(settings, "SCALEDECK_MIG_STATE_TIMEOUT_SECONDS", DEFAULT_STATE_TIMEOUT_SECONDS)),
    }


# --------------------------------------------------------------------------- asking


def _ready_floor_problems(node: GpuNode) -> list[str]:
    """Deployments that draining `node` would leave below their ready floor, in words."""
    pods = list(
        Pod.objects.alive()
        .filter(node=node, deployment__isnull=False)
        .select_related("deployment")
        .prefetch_related("deployment__autoscalers")
    )
    losing: dict[int, list[Pod]] = {}
    for pod in pods:
        if pod.ready:
            losing.setdefault(pod.deployment_id, []).append(pod)
    problems = []
    for dep_pods in losing.values():
        deployment = dep_pods[0].deployment
        live = [a.facts() for a in deployment.autoscalers.all() if a.gone_at is None]
        floor = max((a.min_replicas for a in replica_owner(deployment.name, live).claimants), default=1)
        left = deployment.replicas_ready - len(dep_pods)
        if left < floor:
            problems.append(
                f"draining {node.name} would leave {deployment.namespace}/{deployment.name} with "
                f"{max(left, 0)} ready replica{'s' if left != 1 else ''}, below its floor of {floor}: "
                "scale it up first"
            )
    return problems


def mig_application_request(*, plan: MigPlan, node_name: str, reason: str, actor: Actor) -> MigApplication:
    """Ask for `node_name` to be repartitioned to `plan`'s layout. Refused (nothing stored) when the
    node is not in the plan or has nothing to change, when draining would break a ready floor, or
    while another node of the pool is being repartitioned."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("say why (the reason is audited)", field="reason")
    entry = plan.node_entry(node_name)
    if entry is None:
        raise ApplicationError(f"node {node_name[:253]} is not in plan #{plan.id}", field="node")
    if entry["freed"] or entry["to_config"] == entry["from_config"]:
        raise ApplicationError(f"plan #{plan.id} changes nothing on node {node_name}", field="node")
    node = GpuNode.objects.alive().filter(cluster=plan.cluster, name=node_name).first()
    if node is None:
        raise ApplicationError(f"node {node_name} is gone from cluster {plan.cluster.name}", field="node")
    problems = _ready_floor_problems(node)
    if problems:
        raise ApplicationError("; ".join(problems), status=409, code="ready_floor")
    try:
        with transaction.atomic():
            application = MigApplication.objects.create(
                plan=plan,
                cluster=plan.cluster,
                node_pool=plan.node_pool,
                node=node,
                node_name=node_name,
                from_config=entry["from_config"],
                to_config=entry["to_config"],
                expected_devices=entry["devices_after"],
                reason=reason,
                steps=[{"name": name, "title": title, "status": "pending", "detail": ""} for name, title in STEPS],
                actor_user=actor.user if getattr(actor.user, "pk", None) else None,
                actor_label=actor.label,
            )
            _audit(application, actor, before=None, after={"status": application.status}, reason=reason)
    except IntegrityError:
        busy = MigApplication.objects.filter(node_pool=plan.node_pool, status__in=MigApplication.ACTIVE).first()
        which = f"node {busy.node_name} (#{busy.id})" if busy else "another node"
        raise ApplicationError(
            f"{which} of pool {plan.node_pool.name} is being repartitioned: one node at a time",
            status=409,
            code="pool_busy",
        ) from None
    return application


def mig_application_stop(*, application: MigApplication, actor: Actor) -> None:
    """Stop after the step under way (a pending one stops at once); resume later where it stopped."""
    stopped = MigApplication.objects.filter(id=application.id, status=Status.PENDING).update(
        status=Status.PAUSED, error=f"stopped by {actor.label}; resume to go on", updated_at=timezone.now()
    )
    if not stopped:
        MigApplication.objects.filter(id=application.id, status=Status.RUNNING).update(stop_requested=True)


def mig_application_resume(*, application: MigApplication, actor: Actor) -> MigApplication:
    """A paused or failed action goes again from the first step not done."""
    if application.status not in (Status.PAUSED, Status.FAILED):
        raise ApplicationError(f"the action is {application.get_status_display()}, not paused or failed", status=409)
    steps = [dict(s, status="pending") if s["status"] in ("failed", "running") else s for s in application.steps]
    try:
        with transaction.atomic():
            resumed = MigApplication.objects.filter(id=application.id, status=application.status).update(
                status=Status.PENDING,
                steps=steps,
                error="",
                stop_requested=False,
                finished_at=None,
                updated_at=timezone.now(),
            )
    except IntegrityError:
        raise ApplicationError(
            f"another node of pool {application.node_pool.name} is being repartitioned", status=409
        ) from None
    if resumed != 1:
        raise ApplicationError("the action changed meanwhile; reload", status=409)
    application.refresh_from_db()
    return application


# --------------------------------------------------------------------------- running


class _Run:
    def __init__(self, application: MigApplication, backend, now: datetime):
        self.app = application
        self.backend = backend
        self.now = now
        self.limits = _timeouts()

    def save_steps(self) -> None:
        # Conditional on still holding the claim: a stop that paused it meanwhile wins.
        saved = MigApplication.objects.filter(id=self.app.id, status=Status.RUNNING).update(
            steps=self.app.steps, updated_at=timezone.now()
        )
        if saved != 1:
            raise _Halt("the action was taken over while running")

    def mark(self, step: dict, status: str, detail: str = "", **extra) -> None:
        step.update(status=status, **extra)
        if detail:
            step["detail"] = detail
        step.setdefault("started_at", self.now.isoformat())
        if status in ("done", "failed"):
            step["finished_at"] = self.now.isoformat()
        self.save_steps()

    def elapsed(self, step: dict) -> float:
        return (self.now - datetime.fromisoformat(step["started_at"])).total_seconds()

    def check_stop(self) -> None:
        if MigApplication.objects.filter(id=self.app.id, stop_requested=True).exists():
            raise _Halt("stopped on request; resume to go on")

    def check_layout_offered(self) -> None:
        """Before the node is touched: the GPU operator must know the layout, or the node would be
        drained for a relabel its mig-manager answers with `failed`."""
        record = ClusterMigConfig.objects.filter(cluster_id=self.app.cluster_id).first()
        config_map = record.config_map if record is not None else DEFAULT_CONFIG_MAP
        try:
            config = self.backend.mig_parted_config(config_map)
        except MigPartedConfigError as exc:
            raise _Halt(
                f"the GPU operator's layouts cannot be read ({exc}); nothing was changed on the node", Status.FAILED
            ) from None
        if config is not None and self.app.to_config not in config.layouts:
            raise _Halt(
                f"layout {self.app.to_config} is not in ConfigMap {config_map}, so the GPU operator "
                "could not apply it: add the plan's entry for it there, then resume; nothing was "
                "changed on the node",
                Status.FAILED,
            )

    # the steps ------------------------------------------------------------

    def cordon(self, step: dict) -> None:
        self.check_layout_offered()
        self.backend.patch_node(self.app.node_name, {"spec": {"unschedulable": True}})
        self.mark(step, "done", "the node takes no new pods")

    def drain(self, step: dict) -> None:
        pods = [
            p
            for p in self.backend.node_pods(self.app.node_name)
            if p["owner_kind"] != "DaemonSet" and not p["mirror"] and p["phase"] not in ("Succeeded", "Failed")
        ]
        if step["status"] != "running":
            self.mark(step, "running", started_at=self.now.isoformat(), evicted=[])
        for pod in pods:
            key = f"{pod['namespace']}/{pod['name']}"
            if key in step["evicted"]:
                continue
            try:
                self.backend.evict_pod(pod["namespace"], pod["name"])
            except EvictionRefused as exc:
                raise _Halt(
                    f"{exc}; the node stays cordoned and was not relabelled: resume when the budget allows it"
                ) from None
            step["evicted"].append(key)
            self.save_steps()
        if pods:
            if self.elapsed(step) > self.limits["drain"]:
                left = ", ".join(f"{p['namespace']}/{p['name']}" for p in pods[:5])
                raise _Halt(f"pods still on the node after {self.limits['drain']:.0f} s: {left}", Status.FAILED)
            step["detail"] = f"{len(step['evicted'])} pods evicted, {len(pods)} still terminating"
            self.save_steps()
            raise _Wait
        self.mark(step, "done", f"{len(step['evicted'])} pods evicted, none left on the node")

    def relabel(self, step: dict) -> None:
        for _ in range(3):
            node = self.backend.get_node(self.app.node_name)
            if node["labels"].get(CONFIG_LABEL) == self.app.to_config:
                break
            body = {
                "metadata": {"labels": {CONFIG_LABEL: self.app.to_config}, "resourceVersion": node["resource_version"]}
            }
            try:
                self.backend.patch_node(self.app.node_name, body)
            except ConflictError:
                continue
            step["state_before"] = node["labels"].get(STATE_LABEL, "")
            break
        else:
            raise _Halt("the node kept changing while being relabelled (409 three times)", Status.FAILED)
        self.mark(step, "done", f"{CONFIG_LABEL}={self.app.to_config}")

    def wait(self, step: dict) -> None:
        if step["status"] != "running":
            self.mark(step, "running", started_at=self.now.isoformat(), seen_pending=step.get("seen_pending", False))
        state = self.backend.get_node(self.app.node_name)["labels"].get(STATE_LABEL, "")
        if state == "failed":
            raise _Halt(
                f"the GPU operator reported failed for layout {self.app.to_config}; the node stays cordoned",
                Status.FAILED,
            )
        if state == "pending" and not step["seen_pending"]:
            step["seen_pending"] = True
            step["detail"] = "the GPU operator is repartitioning (pending)"
            self.save_steps()
        if state == "success" and step["seen_pending"]:
            self.mark(step, "done", f"the GPU operator reports success for {self.app.to_config}")
            return
        if self.elapsed(step) > self.limits["wait"]:
            raise _Halt(
                f"no success from the GPU operator within {self.limits['wait']:.0f} s (state: {state or 'none'})",
                Status.FAILED,
            )
        raise _Wait

    def uncordon(self, step: dict) -> None:
        self.backend.patch_node(self.app.node_name, {"spec": {"unschedulable": None}})
        self.mark(step, "done", "the node takes pods again")

    def verify(self, step: dict) -> None:
        capacity = self.backend.get_node(self.app.node_name)["capacity"]
        advertised = {
            k.removeprefix(MIG_PREFIX): int(v)
            for k, v in capacity.items()
            if k.startswith(MIG_PREFIX) and str(v).isdigit() and int(v) > 0
        }
        expected = {k: int(v) for k, v in self.app.expected_devices.items() if int(v) > 0}
        if advertised != expected:
            raise _Halt(
                f"the node advertises {_devices(advertised)}, the plan expects {_devices(expected)}", Status.FAILED
            )
        self.mark(step, "done", f"advertises {_devices(advertised)}")


def _devices(devices: dict[str, int]) -> str:
    return ", ".join(f"{n} x {p}" for p, n in sorted(devices.items())) or "no MIG device"


def mig_application_run(*, application_id: int, backend, now: datetime | None = None) -> RunResult:
    """Claim the action and do as much as can be done without waiting. Returns how it stands, and
    how long to wait before the next run when it handed itself back (pending) to wait."""
    now = now or timezone.now()
    claimed = MigApplication.objects.filter(id=application_id, status=Status.PENDING).update(
        status=Status.RUNNING, updated_at=now
    )
    application = MigApplication.objects.get(id=application_id)
    if claimed != 1:
        return RunResult(application.status)  # another run has it, or it is over
    if application.started_at is None:
        MigApplication.objects.filter(id=application_id).update(started_at=now)
    run = _Run(application, backend, now)
    try:
        for step in application.steps:
            if step["status"] == "done":
                continue
            run.check_stop()
            getattr(run, step["name"])(step)
    except _Wait:
        handed_back = MigApplication.objects.filter(id=application_id, status=Status.RUNNING).update(
            status=Status.PENDING, updated_at=timezone.now()
        )
        return RunResult(Status.PENDING if handed_back else Status.PAUSED, run.limits["poll"])
    except (_Halt, BackendError) as exc:
        status = exc.status if isinstance(exc, _Halt) else (Status.PAUSED if exc.transient else Status.FAILED)
        current = next((s for s in application.steps if s["status"] != "done"), None)
        if current is not None:
            current.update(status="failed", detail=str(exc))
        with transaction.atomic():
            ended = MigApplication.objects.filter(id=application_id, status=Status.RUNNING).update(
                status=status,
                steps=application.steps,
                error=str(exc),
                finished_at=timezone.now(),
                updated_at=timezone.now(),
            )
            if ended:
                _audit(
                    application,
                    f"mig-application:#{application_id}",
                    before={"status": Status.RUNNING},
                    after={"status": status, "error": str(exc)[:500], "step": current["name"] if current else None},
                )
        return RunResult(status)
    with transaction.atomic():
        ended = MigApplication.objects.filter(id=application_id, status=Status.RUNNING).update(
            status=Status.SUCCEEDED, finished_at=timezone.now(), updated_at=timezone.now()
        )
        if ended:
            _audit(
                application,
                f"mig-application:#{application_id}",
                before={"status": Status.RUNNING},
                after={"status": Status.SUCCEEDED, "devices": application.expected_devices},
            )
    return RunResult(Status.SUCCEEDED)


def _audit(application: MigApplication, actor, *, before: dict | None, after: dict, reason: str = "") -> None:
    """One row in the audit list for a repartitioning asked for or ended (its steps stay on the action)."""
    audit_record(
        actor=actor,
        kind=AuditKind.MIG_REPARTITION,
        object=f"{application.cluster.name}/{application.node_name} -> {application.to_config}",
        object_id=application.pk,
        before=before,
        after={"from_config": application.from_config, "to_config": application.to_config, **after},
        reason=reason or application.reason,
    )


# How long a row may sit untouched before its message is taken as lost: a waiting row is due again
# after the poll interval, a running slice ends within its task's time limit (90 s).
LOST_AFTER_SECONDS = 300


def mig_applications_recover(*, now: datetime | None = None) -> list[int]:
    """Ids of applications whose worker message was lost, made runnable again: pending rows not
    touched for LOST_AFTER_SECONDS past their poll, and running rows whose worker died mid-slice
    (put back to pending: every step is safe to redo). The caller sends each to a worker; a
    duplicate message is harmless, the claim lets one run."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=LOST_AFTER_SECONDS + _timeouts()["poll"])
    running = list(
        MigApplication.objects.filter(status=Status.RUNNING, updated_at__lt=stale).values_list("id", flat=True)
    )
    for application_id in running:
        MigApplication.objects.filter(id=application_id, status=Status.RUNNING, updated_at__lt=stale).update(
            status=Status.PENDING, updated_at=now
        )
    pending = MigApplication.objects.filter(status=Status.PENDING, updated_at__lt=stale)
    return sorted(set(pending.values_list("id", flat=True)) | set(running))
