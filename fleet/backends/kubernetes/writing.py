"""Writing to a cluster: absolute merge patches (a Deployment's scale, a ScaledObject, an HPA, a
ResourceQuota, an autoscaler's whole spec), each carrying the resourceVersion it was computed
from, and the re-reads a write starts from."""

from __future__ import annotations

from collections.abc import Callable

from kubernetes import client as k8s

from fleet.backends.base import UNCHANGED, BackendError, ObjectState, one_line
from fleet.backends.kubernetes.autoscaling import parse_scaledobject, quota_entries
from fleet.backends.kubernetes.connection import KEDA, MERGE_PATCH, ApiCall, KubernetesConnection
from fleet.backends.kubernetes.patches import check_target, hpa_patch, quota_patch, scale_patch, scaledobject_patch
from fleet.backends.kubernetes.values import OddObject, Warnings, as_dict, as_str, json_int


class KubernetesWriting(KubernetesConnection):
    """The write half (`ClusterWriter`) and its re-reads; see `KubernetesClusterBackend`."""

    def _check_target(self, namespace: str, name: str, *, write: bool) -> None:
        check_target(namespace, name, allow_list=self.namespaces, write=write)

    def _patch(self, action: ApiCall, method: Callable, *args, body: dict) -> str:
        doc = self._call(action, method, *args, body, _content_type=MERGE_PATCH)
        return as_str(as_dict(doc.get("metadata")).get("resourceVersion"))

    def scale_deployment(self, namespace: str, name: str, replicas: int, *, resource_version: str) -> str:
        """Set a Deployment's replicas through its /scale subresource. Returns the new resourceVersion."""
        self._check_target(namespace, name, write=True)
        body = scale_patch(replicas, resource_version=resource_version)
        apps = k8s.AppsV1Api(self._api())
        action = ApiCall("patch", "deployments/scale", namespace, name)
        return self._patch(action, apps.patch_namespaced_deployment_scale, name, namespace, body=body)

    def patch_scaledobject(
        self,
        namespace: str,
        name: str,
        *,
        resource_version: str,
        min_replicas=UNCHANGED,
        max_replicas=UNCHANGED,
        paused_replicas=UNCHANGED,
    ) -> str:
        """Change a ScaledObject's floor/ceiling and its paused-replicas pin (None removes the pin).
        min/max left UNCHANGED (or None) are not touched. Returns the new resourceVersion."""
        self._check_target(namespace, name, write=True)
        body = scaledobject_patch(
            f"scaledobject {namespace}/{name}",
            resource_version=resource_version,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            paused_replicas=paused_replicas,
        )
        custom = k8s.CustomObjectsApi(self._api())
        action = ApiCall("patch", "scaledobjects.keda.sh", namespace, name)
        group, version, plural = KEDA
        return self._patch(
            action, custom.patch_namespaced_custom_object, group, version, namespace, plural, name, body=body
        )

    def patch_hpa(
        self,
        namespace: str,
        name: str,
        *,
        resource_version: str,
        min_replicas=UNCHANGED,
        max_replicas=UNCHANGED,
    ) -> str:
        """Change an HPA's minReplicas / maxReplicas. Returns the new resourceVersion."""
        self._check_target(namespace, name, write=True)
        body = hpa_patch(
            f"hpa {namespace}/{name}",
            resource_version=resource_version,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
        )
        autoscaling = k8s.AutoscalingV2Api(self._api())
        action = ApiCall("patch", "horizontalpodautoscalers", namespace, name)
        return self._patch(action, autoscaling.patch_namespaced_horizontal_pod_autoscaler, name, namespace, body=body)

    def patch_quota(self, namespace: str, name: str, hard: dict[str, int], *, resource_version: str) -> str:
        """Set GPU entries of a ResourceQuota's spec.hard (other entries are kept). Returns the new
        resourceVersion."""
        self._check_target(namespace, name, write=True)
        body = quota_patch(hard, resource_version=resource_version)
        core = k8s.CoreV1Api(self._api())
        action = ApiCall("patch", "resourcequotas", namespace, name)
        return self._patch(action, core.patch_namespaced_resource_quota, name, namespace, body=body)

    def _autoscaler_call(self, verb: str, kind: str, namespace: str, name: str, **body) -> dict:
        if kind == "scaledobject":
            custom = k8s.CustomObjectsApi(self._api())
            group, version, plural = KEDA
            method = custom.get_namespaced_custom_object if verb == "get" else custom.patch_namespaced_custom_object
            args, action = (
                (group, version, namespace, plural, name),
                ApiCall(verb, "scaledobjects.keda.sh", namespace, name),
            )
        elif kind == "hpa":
            autoscaling = k8s.AutoscalingV2Api(self._api())
            method = (
                autoscaling.read_namespaced_horizontal_pod_autoscaler
                if verb == "get"
                else autoscaling.patch_namespaced_horizontal_pod_autoscaler
            )
            args, action = (name, namespace), ApiCall(verb, "horizontalpodautoscalers", namespace, name)
        else:
            raise BackendError(f"{one_line(kind, 40)!r} is not an autoscaler kind")
        if verb == "get":
            return self._call(action, method, *args)
        return self._call(action, method, *args, body["body"], _content_type=MERGE_PATCH)

    def read_autoscaler_spec(self, kind: str, namespace: str, name: str) -> ObjectState:
        """A ScaledObject's or HPA's whole `spec`, with its labels and annotations (GitOps marks), for
        a policy edit: values {"spec", "labels", "annotations"}."""
        self._check_target(namespace, name, write=False)
        doc = self._autoscaler_call("get", kind, namespace, name)
        meta = as_dict(doc.get("metadata"))
        values = {
            "spec": as_dict(doc.get("spec")),
            "labels": as_dict(meta.get("labels")),
            "annotations": as_dict(meta.get("annotations")),
        }
        return ObjectState(
            kind=kind,
            namespace=namespace,
            name=name,
            values=values,
            resource_version=as_str(meta.get("resourceVersion")),
        )

    def patch_autoscaler_spec(
        self, kind: str, namespace: str, name: str, spec_patch: dict, *, resource_version: str
    ) -> str:
        """Send `{"metadata": {"resourceVersion"}, "spec": spec_patch}` as one JSON merge patch (a policy
        edit, built and validated by scaling/autoscaler_policy.py). Returns the new resourceVersion."""
        self._check_target(namespace, name, write=True)
        body = {"metadata": {"resourceVersion": resource_version}, "spec": spec_patch}
        doc = self._autoscaler_call("patch", kind, namespace, name, body=body)
        return as_str(as_dict(doc.get("metadata")).get("resourceVersion"))

    # ------------------------------------------------------------------ re-reads

    def _get(self, action: ApiCall, method: Callable, *args) -> tuple[dict, str]:
        doc = self._call(action, method, *args)
        return doc, as_str(as_dict(doc.get("metadata")).get("resourceVersion"))

    def _value(self, what: str, parse: Callable, *args, **kwargs):
        try:
            return parse(*args, **kwargs)
        except OddObject as exc:
            raise BackendError(f"{what}: {exc}") from None

    def get_deployment_scale(self, namespace: str, name: str) -> tuple[dict, str]:
        """({"replicas"}, resourceVersion) of a Deployment, from its /scale subresource."""
        self._check_target(namespace, name, write=False)
        apps = k8s.AppsV1Api(self._api())
        doc, rv = self._get(
            ApiCall("get", "deployments/scale", namespace, name), apps.read_namespaced_deployment_scale, name, namespace
        )
        spec = as_dict(doc.get("spec"))
        what = f"deployment {namespace}/{name}"
        replicas = self._value(what, json_int, spec.get("replicas"), "spec.replicas", default=0)
        return {"replicas": replicas}, rv

    def get_scaledobject(self, namespace: str, name: str) -> tuple[dict, str]:
        """({"min_replicas", "max_replicas", "paused_replicas"}, resourceVersion) of a ScaledObject."""
        self._check_target(namespace, name, write=False)
        custom = k8s.CustomObjectsApi(self._api())
        doc, rv = self._get(
            ApiCall("get", "scaledobjects.keda.sh", namespace, name),
            custom.get_namespaced_custom_object,
            *KEDA[:2],
            namespace,
            KEDA[2],
            name,
        )
        warnings = Warnings()
        facts = self._value(f"scaledobject {namespace}/{name}", parse_scaledobject, doc, namespace, name, warnings)
        if facts is None:
            raise BackendError(f"scaledobject {namespace}/{name} does not target a Deployment")
        if warnings.items:
            raise BackendError(warnings.items[0])
        return {
            "min_replicas": facts.min_replicas,
            "max_replicas": facts.max_replicas,
            "paused_replicas": facts.paused_replicas,
        }, rv

    def get_hpa(self, namespace: str, name: str) -> tuple[dict, str]:
        """({"min_replicas", "max_replicas"}, resourceVersion) of an HPA."""
        self._check_target(namespace, name, write=False)
        autoscaling = k8s.AutoscalingV2Api(self._api())
        doc, rv = self._get(
            ApiCall("get", "horizontalpodautoscalers", namespace, name),
            autoscaling.read_namespaced_horizontal_pod_autoscaler,
            name,
            namespace,
        )
        spec = as_dict(doc.get("spec"))
        what = f"hpa {namespace}/{name}"
        return {
            "min_replicas": self._value(what, json_int, spec.get("minReplicas"), "spec.minReplicas", default=1),
            "max_replicas": self._value(what, json_int, spec.get("maxReplicas"), "spec.maxReplicas", minimum=1),
        }, rv

    def get_quota(self, namespace: str, name: str) -> tuple[dict, str]:
        """({"hard", "used"}, resourceVersion) of a ResourceQuota, GPU entries only. `hard` is
        spec.hard (what a write sets; status.hard lags behind it)."""
        self._check_target(namespace, name, write=False)
        core = k8s.CoreV1Api(self._api())
        doc, rv = self._get(
            ApiCall("get", "resourcequotas", namespace, name), core.read_namespaced_resource_quota, name, namespace
        )
        what = f"resourcequota {namespace}/{name}"
        hard = self._value(what, quota_entries, as_dict(doc.get("spec")).get("hard"), "hard")
        used = self._value(what, quota_entries, as_dict(doc.get("status")).get("used"), "used")
        return {"hard": hard, "used": used}, rv

    def read_object(self, kind: str, namespace: str, name: str) -> ObjectState:
        """Current values and resourceVersion of "deployment" | "scaledobject" | "hpa" | "quota"."""
        readers = {
            "deployment": self.get_deployment_scale,
            "scaledobject": self.get_scaledobject,
            "hpa": self.get_hpa,
            "quota": self.get_quota,
        }
        if kind not in readers:
            raise BackendError(f"cannot read objects of kind {one_line(kind, 40)!r}")
        values, rv = readers[kind](namespace, name)
        return ObjectState(kind=kind, namespace=namespace, name=name, values=values, resource_version=rv)

    # ------------------------------------------------------------------ nodes (MIG repartitioning)
