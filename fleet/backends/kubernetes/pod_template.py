"""What a Deployment's pod template says about where and how its pods run: whether they tolerate
the GPU taint, whether replicas are kept on separate nodes, whether the serving container has a
preStop hook. Plain dicts in, plain values out (the configuration doctor's evidence).
"""

from __future__ import annotations

from fleet.backends.base import GPU_RESOURCE
from fleet.backends.kubernetes.values import as_dict, as_list, as_str

HOSTNAME_TOPOLOGY = "kubernetes.io/hostname"


def tolerates_taint(template: dict, key: str = GPU_RESOURCE, effect: str = "NoSchedule") -> bool:
    """The pod template tolerates a `key` taint with `effect` (an `Exists` toleration, an `Equal`
    one whatever the taint's value would need aside, or a key-less `Exists` that tolerates all)."""
    for toleration in map(as_dict, as_list(template.get("tolerations"))):
        operator = as_str(toleration.get("operator")) or "Equal"
        tol_key, tol_effect = as_str(toleration.get("key")), as_str(toleration.get("effect"))
        if tol_effect and tol_effect != effect:
            continue
        if not tol_key and operator == "Exists":
            return True
        if tol_key == key:
            return True
    return False


def spreads_across_nodes(template: dict) -> bool:
    """Replicas can never share a node: a required podAntiAffinity on the hostname, or a
    topology spread of at most 1 per hostname that refuses to schedule otherwise."""
    anti = as_dict(as_dict(template.get("affinity")).get("podAntiAffinity"))
    required = as_list(anti.get("requiredDuringSchedulingIgnoredDuringExecution"))
    if any(as_str(as_dict(term).get("topologyKey")) == HOSTNAME_TOPOLOGY for term in required):
        return True
    for spread in map(as_dict, as_list(template.get("topologySpreadConstraints"))):
        if (
            as_str(spread.get("topologyKey")) == HOSTNAME_TOPOLOGY
            and as_str(spread.get("whenUnsatisfiable")) == "DoNotSchedule"
            and spread.get("maxSkew") == 1
        ):
            return True
    return False


def has_pre_stop(container: dict) -> bool:
    """The container runs a preStop hook (exec, httpGet or sleep) before it is stopped."""
    return bool(as_dict(as_dict(container.get("lifecycle")).get("preStop")))
