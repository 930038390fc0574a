"""Who owns a Deployment's replicas: one function, one answer type, one vocabulary.

A Deployment's `spec.replicas` is set by at most one of: a KEDA ScaledObject, an independent
HorizontalPodAutoscaler, or nobody (the Deployment is sized by hand, through its `/scale`).
KEDA's own `keda-hpa-<name>` HPA is part of its ScaledObject, never an owner of its own. Two
owners (a ScaledObject and an HPA, or two of either) overwrite each other's replicas: a conflict.

Every page, API, lint rule and write path asks `replica_owner`; the autoscalers it reads are
`AutoscalerFacts` (from a backend's snapshot, or `Autoscaler.facts()` for a synced row). The kinds
are `ReplicaOwnerKind`: the same values name an autoscaler row's kind, a scale action's target and
the object a write goes to. The deployments API's older names ("keda", "none") are made in
`api_kind`, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import models

from fleet.backends.base import AutoscalerFacts


class ReplicaOwnerKind(models.TextChoices):
    SCALEDOBJECT = "scaledobject", "KEDA ScaledObject"
    HPA = "hpa", "HorizontalPodAutoscaler"
    DEPLOYMENT = "deployment", "Deployment"  # no autoscaler: sized by hand
    CONFLICT = "conflict", "conflict"  # more than one autoscaler claims the replicas


# The kinds an autoscaler object can be (the `Autoscaler.kind` column).
AUTOSCALER_KINDS = (ReplicaOwnerKind.SCALEDOBJECT, ReplicaOwnerKind.HPA)
AUTOSCALER_KIND_CHOICES = [(k.value, k.label) for k in AUTOSCALER_KINDS]

_SHORT = {ReplicaOwnerKind.SCALEDOBJECT: "ScaledObject", ReplicaOwnerKind.HPA: "HPA"}
_KUBERNETES = {ReplicaOwnerKind.SCALEDOBJECT: "ScaledObject", ReplicaOwnerKind.HPA: "HorizontalPodAutoscaler"}
_BADGE = {ReplicaOwnerKind.SCALEDOBJECT: "KEDA", ReplicaOwnerKind.HPA: "HPA"}
_API = {
    ReplicaOwnerKind.SCALEDOBJECT: "keda",
    ReplicaOwnerKind.HPA: "hpa",
    ReplicaOwnerKind.DEPLOYMENT: "none",
    ReplicaOwnerKind.CONFLICT: "conflict",
}


def short_name(a: AutoscalerFacts) -> str:
    """ "ScaledObject llama", "HPA llama-cpu": an autoscaler as sentences name it."""
    return f"{_SHORT[ReplicaOwnerKind(a.kind)]} {a.name}"


def kubernetes_kind(kind: str) -> str:
    """The object's `kind` in the Kubernetes API: "ScaledObject" | "HorizontalPodAutoscaler"."""
    return _KUBERNETES[ReplicaOwnerKind(kind)]


def api_kind(kind: str) -> str:
    """The value the deployments API and the scale API's 409 use for a kind (their documented
    contract predates this vocabulary): "keda" | "hpa" | "none" | "conflict"."""
    return _API[ReplicaOwnerKind(kind)]


def independent_autoscalers(autoscalers: Iterable[AutoscalerFacts]) -> list[AutoscalerFacts]:
    """The autoscalers that each claim `spec.replicas` (KEDA's own HPA belongs to its ScaledObject),
    ScaledObjects first, then by name."""
    return sorted(
        (a for a in autoscalers if not a.owned_by_scaledobject),
        key=lambda a: (a.kind != ReplicaOwnerKind.SCALEDOBJECT, a.name),
    )


@dataclass(frozen=True)
class ReplicaOwner:
    """The answer: which object sets the replicas, and its autoscaler (None for a Deployment sized
    by hand or in conflict); in conflict, the autoscalers that fight."""

    kind: ReplicaOwnerKind
    name: str  # the ScaledObject's, the HPA's or the Deployment's own; "" in conflict
    autoscaler: AutoscalerFacts | None = None
    conflicts: tuple[AutoscalerFacts, ...] = ()

    @property
    def autoscaled(self) -> bool:
        return self.kind in AUTOSCALER_KINDS

    @property
    def paused(self) -> bool:
        """A ScaledObject paused (`autoscaling.keda.sh/paused`) or pinned (`paused-replicas`)."""
        a = self.autoscaler
        return a is not None and (a.paused or a.paused_replicas is not None)

    @property
    def claimants(self) -> tuple[AutoscalerFacts, ...]:
        """The autoscalers that claim the replicas: the owner, or every one in conflict."""
        return self.conflicts or ((self.autoscaler,) if self.autoscaler is not None else ())

    @property
    def badge(self) -> str:
        """ "KEDA" | "HPA" for an autoscaled owner (the overview's badge, the chat answer), else ""."""
        return _BADGE.get(self.kind, "")

    @property
    def labelled_conflicts(self) -> list[tuple[str, AutoscalerFacts]]:
        """("KEDA ScaledObject", autoscaler), ("HorizontalPodAutoscaler", autoscaler)... for pages."""
        return [(ReplicaOwnerKind(a.kind).label, a) for a in self.conflicts]

    @property
    def conflict_names(self) -> str:
        """ "ScaledObject llama and HPA llama-cpu"; "" when there is no conflict."""
        return " and ".join(short_name(a) for a in self.conflicts)


def replica_owner(deployment_name: str, autoscalers: Iterable[AutoscalerFacts]) -> ReplicaOwner:
    """Who owns the replicas of the Deployment `deployment_name`, given the live autoscalers that
    target it. A paused ScaledObject still owns them (KEDA holds the count it was paused at)."""
    owners = independent_autoscalers(autoscalers)
    if len(owners) > 1:
        return ReplicaOwner(ReplicaOwnerKind.CONFLICT, "", conflicts=tuple(owners))
    if not owners:
        return ReplicaOwner(ReplicaOwnerKind.DEPLOYMENT, deployment_name)
    owner = owners[0]
    return ReplicaOwner(ReplicaOwnerKind(owner.kind), owner.name, owner)
