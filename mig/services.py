"""Changes for MIG planning: make and store a plan for a node pool; start and resume repartitioning a node."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from decimal import Decimal

from django.db import IntegrityError, transaction

from accounts.audit import audit_record
from accounts.models import AuditKind
from core.errors import ApplicationError
from costing import selectors as costing_selectors
from fleet.backends.base import DeploymentMetrics
from fleet.metrics import deployment_metrics
from fleet.mig import gpu_models
from fleet.models import Cluster, ModelDeployment, NodePool
from mig import doctor, layouts, planner, selectors
from mig.apply import mig_application_request, mig_application_resume
from mig.memory import memory_need
from mig.models import FindingDismissal, MigApplication, MigPlan
from mig.tasks import run_mig_application
from scaling.services import Actor


def _device_memory(deployment, product: str, node_memory: int) -> int | None:
    model = gpu_models().get(product)
    profile = deployment.gpu_resource.removeprefix(selectors.MIG_RESOURCE_PREFIX)
    if deployment.gpu_resource.startswith(selectors.MIG_RESOURCE_PREFIX):
        return model.profiles[profile].memory_mib if model and profile in model.profiles else None
    return node_memory or None


def mig_plan_create(*, cluster: Cluster, node_pool: NodePool, actor: Actor) -> MigPlan:
    """Plan the pool from the last sync and store the plan. Pools of several GPU models are planned
    per model: a replica stays on the GPU model most of its pods run on."""
    if node_pool.cluster_id != cluster.id:
        raise ApplicationError(f"node pool {node_pool.name} is not in cluster {cluster.name}", field="node_pool")
    nodes = selectors.pool_nodes(node_pool)
    if not nodes:
        raise ApplicationError(f"node pool {node_pool.name} has no GPU node", field="node_pool")
    placed = selectors.pool_deployments(nodes)
    prices = costing_selectors.node_cost_per_hour(nodes)
    deployments = [d for d, _, _ in placed.values()]
    costs = costing_selectors.deployment_cost_per_hour(deployments) if deployments else {}
    metrics = deployment_metrics(deployments) if deployments else {}
    config, layouts_from = selectors.cluster_mig_layouts(cluster)
    by_product = defaultdict(list)
    for node in nodes:
        by_product[node.gpu_product].append(node)
    plans = []
    for product, group in sorted(by_product.items()):
        node_memory = max(n.gpu_memory_mib for n in group)
        demands = []
        for deployment, home, replicas in placed.values():
            if home != product:
                continue
            need = memory_need(
                selectors.memory_inputs(deployment, device_memory_mib=_device_memory(deployment, product, node_memory))
            )
            tokens = (metrics.get(deployment.id) or DeploymentMetrics()).generation_tokens_per_second
            demands.append(
                planner.DeploymentDemand(
                    id=deployment.id,
                    name=f"{deployment.namespace}/{deployment.name}",
                    replicas=replicas,
                    need_mib=need.per_gpu_mib,
                    why_unknown=need.why_unknown,
                    gpus_per_replica=deployment.gpu_per_replica if deployment.gpu_resource == "nvidia.com/gpu" else 1,
                    tensor_parallel=max(deployment.tensor_parallel, 1),
                    usd_per_hour_now=costs.get(deployment.id),
                    generated_tokens_per_hour=tokens * 3600 if tokens else None,
                )
            )
        shapes = [
            planner.NodeShape(n.name, product, n.gpu_count, n.mig_config, n.mig_devices, prices.get(n.id))
            for n in group
        ]
        plans.append(
            planner.plan_pool(
                model=gpu_models().get(product),
                gpu_product=product,
                nodes=shapes,
                deployments=demands,
                named_layouts=layouts.named_layouts(product, config),
            )
        )
    gpu_counts = {n.name: n.gpu_count for n in nodes}
    before = [p.usd_per_hour_before for p in plans]
    after = [p.usd_per_hour_after for p in plans]
    with transaction.atomic():
        plan = MigPlan.objects.create(
            cluster=cluster,
            node_pool=node_pool,
            gpu_products=[p.gpu_product for p in plans],
            nodes=[_node_row(c, gpu_counts[c.node]) for p in plans for c in p.nodes],
            placements=[_json(asdict(x)) for p in plans for x in p.placements],
            kept_whole=[_json(asdict(x)) for p in plans for x in p.kept_whole],
            unplaced=[x for p in plans for x in p.unplaced],
            usd_per_hour_before=sum(before, Decimal(0)) if None not in before else None,
            usd_per_hour_after=sum(after, Decimal(0)) if None not in after else None,
            layouts_from=layouts_from[:300],
            actor_user=actor.user if getattr(actor.user, "pk", None) else None,
            actor_label=actor.label,
        )
        audit_record(
            actor=actor,
            kind=AuditKind.MIG_PLAN,
            object=f"{cluster.name}/{node_pool.name} plan #{plan.id}",
            object_id=plan.id,
            before=None,
            after={
                "nodes": [{k: n.get(k) for k in ("node", "from_config", "to_config")} for n in plan.nodes],
                "usd_per_hour_before": _money(plan.usd_per_hour_before),
                "usd_per_hour_after": _money(plan.usd_per_hour_after),
            },
        )
    return plan


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _node_row(change: planner.NodeChange, gpu_count: int) -> dict:
    row = _json(asdict(change))
    row["gpu_layouts"] = [dict(layout) for layout in change.gpu_layouts]
    row["gpu_count"] = gpu_count
    return row


def _json(row: dict) -> dict:
    """Decimals as strings: money keeps its digits in JSON."""
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in row.items()}


def mig_application_start(*, plan: MigPlan, node_name: str, reason: str, actor: Actor) -> MigApplication:
    """Ask for a node's repartitioning (refusals as `mig_application_request`) and send it to a worker
    once the row is committed."""
    application = mig_application_request(plan=plan, node_name=node_name, reason=reason, actor=actor)
    transaction.on_commit(lambda: run_mig_application.delay(application.id))
    return application


def mig_application_continue(*, application: MigApplication, actor: Actor) -> MigApplication:
    """Resume a paused or failed repartitioning at the step where it stopped."""
    application = mig_application_resume(application=application, actor=actor)
    transaction.on_commit(lambda: run_mig_application.delay(application.id))
    return application


def finding_dismiss(*, deployment: ModelDeployment, kind: str, reason: str, actor: Actor) -> FindingDismissal:
    """Hide one doctor finding of one deployment, with the reason (audited: who, why, when)."""
    if kind not in doctor.KINDS:
        raise ApplicationError(f"{kind[:40]} is not a kind of finding", field="kind")
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("say why (the reason is audited)", field="reason")
    try:
        with transaction.atomic():
            dismissal = FindingDismissal.objects.create(
                deployment=deployment,
                kind=kind,
                reason=reason[:2000],
                actor_label=actor.label,
                actor_user=actor.user if getattr(actor.user, "pk", None) else None,
            )
            audit_record(
                actor=actor,
                kind=AuditKind.FINDING,
                object=f"{deployment.cluster.name}/{deployment.namespace}/{deployment.name} {kind}",
                object_id=dismissal.pk,
                before={"dismissed": False},
                after={"dismissed": True, "kind": kind},
                reason=dismissal.reason,
            )
            return dismissal
    except IntegrityError:
        raise ApplicationError(
            f"{kind} on {deployment.namespace}/{deployment.name} is already dismissed", status=409
        ) from None
