"""Nodes for MIG repartitioning: read a node, patch it (cordon, label), list its pods, and evict
them through the eviction API (never a delete)."""

from __future__ import annotations

import json
import re

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from fleet.backends.base import BackendError, EvictionRefused
from fleet.backends.kubernetes.connection import ApiCall
from fleet.backends.kubernetes.values import as_dict, as_str
from fleet.backends.kubernetes.writing import KubernetesWriting
from fleet.mig_parted import CONFIG_KEY, MigPartedConfig, MigPartedConfigError, parse_mig_parted_config


class KubernetesNodes(KubernetesWriting):
    """Node operations; see `KubernetesClusterBackend`."""

    def get_node(self, name: str) -> dict:
        """{"unschedulable", "labels", "capacity", "resource_version"} of a node, read now."""
        core = k8s.CoreV1Api(self._api())
        doc, rv = self._get(ApiCall("get", "nodes", name=name, cluster_scoped=True), core.read_node, name)
        labels = as_dict(as_dict(doc.get("metadata")).get("labels"))
        capacity = as_dict(as_dict(doc.get("status")).get("capacity"))
        return {
            "unschedulable": as_dict(doc.get("spec")).get("unschedulable") is True,
            "labels": {str(k): as_str(v) for k, v in labels.items()},
            "capacity": {str(k): as_str(v) for k, v in capacity.items()},
            "resource_version": rv,
        }

    def patch_node(self, name: str, body: dict) -> str:
        """Merge-patch a node (cordon, uncordon, a label). Returns the new resourceVersion."""
        core = k8s.CoreV1Api(self._api())
        return self._patch(ApiCall("patch", "nodes", name=name, cluster_scoped=True), core.patch_node, name, body=body)

    def mig_parted_config(self, config_map: str) -> MigPartedConfig | None:
        """The named MIG layouts the GPU operator's mig-manager can apply, from its ConfigMap
        (`namespace/name`, key config.yaml). None when that ConfigMap does not exist; BackendError
        when it cannot be read; MigPartedConfigError when its text is not a mig-parted config."""
        namespace, _, name = config_map.partition("/")
        core = k8s.CoreV1Api(self._api())
        try:
            doc, _ = self._get(
                ApiCall("get", "configmaps", namespace, name), core.read_namespaced_config_map, name, namespace
            )
        except BackendError as exc:
            if exc.status == 404:
                return None
            raise
        text = as_dict(doc.get("data")).get(CONFIG_KEY)
        if not isinstance(text, str):
            raise MigPartedConfigError(f"{config_map}: the ConfigMap has no {CONFIG_KEY} key")
        return parse_mig_parted_config(text, source=config_map)

    def node_pods(self, name: str) -> list[dict]:
        """The pods bound to a node: {"namespace", "name", "owner_kind", "phase", "mirror"}."""
        core = k8s.CoreV1Api(self._api())
        items = self._list(
            ApiCall("list", "pods"), core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={name}"
        )
        pods = []
        for item in items:
            meta = as_dict(as_dict(item).get("metadata"))
            owners = [as_dict(o) for o in meta.get("ownerReferences") or [] if isinstance(o, dict)]
            pods.append(
                {
                    "namespace": as_str(meta.get("namespace")),
                    "name": as_str(meta.get("name")),
                    "owner_kind": as_str(owners[0].get("kind")) if owners else "",
                    "phase": as_str(as_dict(as_dict(item).get("status")).get("phase")),
                    "mirror": "kubernetes.io/config.mirror" in as_dict(meta.get("annotations")),
                }
            )
        return pods

    def evict_pod(self, namespace: str, name: str) -> None:
        """Ask the eviction API (policy/v1) to remove a pod, honouring its PodDisruptionBudgets and
        its own terminationGracePeriodSeconds. Never a delete. 429: `EvictionRefused`."""
        self._check_target(namespace, name, write=True)
        core = k8s.CoreV1Api(self._api())
        action = ApiCall("create", "pods/eviction", namespace, name)
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
        try:
            response = core.create_namespaced_pod_eviction(
                name, namespace, body, _preload_content=False, _request_timeout=self.timeout_seconds
            )
            try:
                response.data  # noqa: B018 - read the answer whole, or the pooled connection breaks the next call
            finally:
                response.release_conn()
        except ApiException as exc:
            if exc.status == 429:
                raise _eviction_refused(exc.body, namespace, name) from None
            raise self._api_error(exc, action) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._transport_error(exc) from None


_BUDGET = re.compile(r"disruption budget ([a-z0-9]([-a-z0-9.]*[a-z0-9])?)")


def _eviction_refused(body: str | bytes | None, namespace: str, name: str) -> EvictionRefused:
    """The PodDisruptionBudget a 429 names (in `details.causes`, reason DisruptionBudget), if any."""
    try:
        doc = as_dict(json.loads(body or ""))
    except (ValueError, TypeError):
        doc = {}
    causes = [as_dict(c) for c in as_dict(doc.get("details")).get("causes") or [] if isinstance(c, dict)]
    texts = [as_str(c.get("message")) for c in causes] + [as_str(doc.get("message"))]
    budget = next((m.group(1) for m in map(_BUDGET.search, texts) if m), "")
    which = f"PodDisruptionBudget {namespace}/{budget}" if budget else "a PodDisruptionBudget"
    return EvictionRefused(f"{which} refused to evict pod {namespace}/{name} (429)", budget=budget)
