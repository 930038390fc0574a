"""deploy/: every overlay renders with `kubectl kustomize`, validates with `kubernetes-validate
--strict` for Kubernetes 1.30 and the newest version it knows, every container passes the
"restricted" Pod Security profile, and the RBAC grants exactly the calls the code makes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.services import missing_service

DEPLOY = ROOT / "deploy"
TARGETS = ["base", "overlays/demo", "overlays/production"]
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
# Kinds of the Prometheus Operator: kubernetes-validate has no schema for them.
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
# Pods whose processes call the Kubernetes API, and so get a token.
KUBERNETES_CLIENTS = {"scaledeck-worker", "scaledeck-cluster-watch"}


def executable(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        missing_service(f"{name} is not installed (pip install '.[test]')")
    return found


@cache
def rendered(target: str) -> str:
    result = subprocess.run(
        [executable("kubectl"), "kustomize", str(DEPLOY / target)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def objects(target: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(rendered(target)) if doc]


def newest_kubernetes() -> str:
    from kubernetes_validate.utils import latest_version

    return latest_version()


@pytest.mark.parametrize("version", ["1.30.0", "newest"])
def test_every_target_renders_and_validates_strictly(version, tmp_path):
    version = newest_kubernetes() if version == "newest" else version
    files = []
    for target in TARGETS:  # one run for all of them: the schemas load once
        manifest = tmp_path / f"{target.replace('/', '-')}.yaml"
        manifest.write_text(rendered(target))
        files.append(str(manifest))
    result = subprocess.run(
        [executable("kubernetes-validate"), "--strict", "-k", version, *files],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for line in (result.stdout + result.stderr).splitlines():
        if not line.startswith("INFO"):
            assert any(f"kind {kind} " in line for kind in OPERATOR_KINDS), line
    for target, manifest in zip(TARGETS, files, strict=True):
        validated = len(re.findall(rf"^INFO {re.escape(manifest)} passed for resource", result.stdout, re.M))
        assert validated == len([o for o in objects(target) if o["kind"] not in OPERATOR_KINDS]), target


def pod_specs(target: str):
    for obj in objects(target):
        if obj["kind"] in WORKLOADS:
            template = (
                obj["spec"]["template"] if obj["kind"] != "CronJob" else obj["spec"]["jobTemplate"]["spec"]["template"]
            )
            yield obj["metadata"]["name"], template["spec"]


@pytest.mark.parametrize("target", TARGETS)
def test_every_container_passes_the_restricted_pod_security_profile(target):
    specs = list(pod_specs(target))
    assert specs
    for name, spec in specs:
        pod = spec.get("securityContext", {})
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(key), f"{name}: {key}"
        for volume in spec.get("volumes", []):
            kinds = set(volume) - {"name"}
            assert kinds <= {
                "emptyDir",
                "secret",
                "configMap",
                "persistentVolumeClaim",
                "projected",
                "downwardAPI",
                "ephemeral",
                "csi",
            }, f"{name}: volume {volume}"
        writable = {m["mountPath"]: m["name"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
        for container in spec.get("initContainers", []) + spec["containers"]:
            where = f"{name}/{container['name']}"
            context = container.get("securityContext", {})
            assert context.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, where
            assert context.get("runAsUser", pod.get("runAsUser", 1)) != 0, where
            seccomp = context.get("seccompProfile", pod.get("seccompProfile", {}))
            assert seccomp.get("type") in ("RuntimeDefault", "Localhost"), where
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            assert set(context.get("capabilities", {}).get("add", [])) <= {"NET_BIND_SERVICE"}, where
            assert not context.get("privileged"), where
            assert context.get("readOnlyRootFilesystem") is True, where
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{where}: {kind}"
        if name.startswith("scaledeck-") and "postgres" not in name and "redis" not in name:
            volumes = {v["name"]: v for v in spec["volumes"]}
            assert "emptyDir" in volumes[writable["/tmp"]], f"{name}: /tmp must be a writable emptyDir"


@pytest.mark.parametrize("target", TARGETS)
def test_only_the_pods_running_the_kubernetes_client_get_a_token(target):
    accounts = {o["metadata"]["name"]: o for o in objects(target) if o["kind"] == "ServiceAccount"}
    assert all(account.get("automountServiceAccountToken") is False for account in accounts.values())
    for name, spec in pod_specs(target):
        assert spec.get("automountServiceAccountToken", False) is (name in KUBERNETES_CLIENTS), name
    web = {name: spec for name, spec in pod_specs(target)}["scaledeck-web"]
    bindings = [o for o in objects(target) if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert not [b for b in bindings if any(s["name"] == web["serviceAccountName"] for s in b["subjects"])]


def test_beat_runs_alone_and_the_web_keeps_one_pod_through_disruptions():
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objects("base")}
    beat = by_name[("Deployment", "scaledeck-beat")]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"
    assert by_name[("Deployment", "scaledeck-web")]["spec"]["replicas"] == 2
    assert by_name[("PodDisruptionBudget", "scaledeck-web")]["spec"]["minAvailable"] == 1
    for name in ("scaledeck-worker", "scaledeck-beat"):
        [container] = by_name[("Deployment", name)]["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"]["exec"]["command"][:3] == ["python", "-m", "ops.heartbeat"]
    [web] = by_name[("Deployment", "scaledeck-web")]["spec"]["template"]["spec"]["containers"]
    probes = (web["livenessProbe"]["httpGet"]["path"], web["readinessProbe"]["httpGet"]["path"])
    assert probes == ("/healthz", "/readyz")


def test_the_production_overlay_pins_the_image_by_digest_and_serves_tls():
    prod = objects("overlays/production")
    images = {
        c["image"]
        for _, spec in pod_specs("overlays/production")
        for c in spec.get("initContainers", []) + spec["containers"]
    }
    assert images and all("@sha256:" in image for image in images)
    [ingress] = [o for o in prod if o["kind"] == "Ingress"]
    assert ingress["spec"]["tls"][0]["secretName"]
    assert not [o for o in prod if o["kind"] in ("StatefulSet", "Secret")]  # external stores and secrets


# ------------------------------------------------------------------ RBAC against the code

GROUPS = {
    "pods": "",
    "pods/eviction": "",
    "nodes": "",
    "resourcequotas": "",
    "events": "",
    "configmaps": "",
    "deployments": "apps",
    "replicasets": "apps",
    "deployments/scale": "apps",
    "horizontalpodautoscalers": "autoscaling",
}
LEASE_MODULE = "lease.py"  # the watcher's own Lease: its calls are the watcher's, not the worker's


def group_and_resource(resource: str) -> tuple[str, str]:
    if "." in resource:  # scaledobjects.keda.sh
        plural, group = resource.split(".", 1)
        return group, plural
    return GROUPS[resource], resource


def calls_in_the_code() -> tuple[set, set]:
    """(worker calls, watcher calls) as (apiGroup, resource, verb), read from the Kubernetes backend's modules."""
    paths = sorted((ROOT / "fleet" / "backends" / "kubernetes").glob("*.py"))
    source = "\n".join(path.read_text() for path in paths if path.name != LEASE_MODULE)
    lease_source = "\n".join(path.read_text() for path in paths if path.name == LEASE_MODULE)
    constants = {
        name: f"{plural}.{group}"  # KEDA = ("keda.sh", "v1alpha1", "scaledobjects")
        for name, group, plural in re.findall(r'^(\w+) = \("([\w.]+)", "\w+", "(\w+)"\)', source, re.M)
    }
    call = r'ApiCall\("(get|patch|list|create|update)", "([\w./]+)"'
    worker = {(*group_and_resource(r), verb) for verb, r in re.findall(call, source)}
    worker |= {
        (*group_and_resource(r), "list") for r in re.findall(r'_list_(?:namespaced|optional)\(\s*"([\w./]+)"', source)
    }
    worker |= {(*group_and_resource(constants[c]), "list") for c in re.findall(r"_list_custom\(\*(\w+)", source)}
    kinds = source[source.index("def _kind_calls") : source.index("def watch_scopes")]
    watched = {group_and_resource(r) for r in re.findall(r'lambda: \(\s*"([\w./]+)"', kinds)}
    watched |= {group_and_resource(constants[c]) for c in re.findall(r"crd\(\*(\w+)", kinds)}
    watcher = {(group, resource, verb) for group, resource in watched for verb in ("list", "watch")}
    watcher |= {(*group_and_resource(r), verb) for verb, r in re.findall(call, lease_source)}
    return worker, watcher


def granted(target: str, account: str) -> set:
    objs = objects(target)
    roles = {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
        for o in objs
        if o["kind"] in ("Role", "ClusterRole")
    }
    rights = set()
    for binding in (o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        if not any(s["kind"] == "ServiceAccount" and s["name"] == account for s in binding["subjects"]):
            continue
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        for rule in roles[(ref["kind"], namespace, ref["name"])]["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        rights.add((group, resource, verb))
    return rights


def test_the_rbac_grants_exactly_what_the_code_calls():
    worker_calls, watcher_calls = calls_in_the_code()
    assert ("apps", "deployments/scale", "patch") in worker_calls and ("", "nodes", "watch") in watcher_calls
    assert ("coordination.k8s.io", "leases", "update") in watcher_calls
    # A (verb, resource) granted in a namespace and cluster-wide (pods: listed per namespace by the
    # sync, across namespaces on one node by a MIG drain) counts once.
    assert granted("overlays/production", "scaledeck-worker") == worker_calls
    assert granted("overlays/production", "scaledeck-watch") == watcher_calls


def test_the_rbac_has_no_wildcards_no_secrets_and_reads_cluster_wide_only_cluster_scoped_kinds():
    objs = objects("overlays/production")
    for role in (o for o in objs if o["kind"] in ("Role", "ClusterRole")):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], role["metadata"]["name"]
            assert "secrets" not in rule["resources"]
            if role["kind"] == "ClusterRole" and role["metadata"]["name"] != "scaledeck-worker-mig":
                assert set(rule["resources"]) <= {"nodes", "nodepools", "nodeclaims"}, role["metadata"]["name"]
            if role["metadata"]["name"] == "scaledeck-worker-mig":  # a node's pods are in any namespace
                assert rule["verbs"] != ["patch"] or rule["resources"] == ["nodes"]
    namespaces = {o["metadata"]["namespace"] for o in objs if o["kind"] == "Role"}
    assert namespaces == {"llm-prod", "team-search", "gpu-operator", "scaledeck"}
    # In the GPU operator's namespace, the mig-parted ConfigMap and nothing else.
    layouts = [o for o in objs if o["kind"] == "Role" and o["metadata"]["namespace"] == "gpu-operator"]
    assert [r for o in layouts for r in o["rules"]] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["default-mig-parted-config"],
            "verbs": ["get"],
        }
    ]
    assert not [
        o
        for o in objs
        if o["kind"] == "ClusterRoleBinding"
        and o["roleRef"]["kind"] == "ClusterRole"
        and not o["roleRef"]["name"].endswith(("-cluster", "-mig"))
    ]
    base = objects("base")
    assert not [o for o in base if o["kind"] == "ClusterRole" and "pods" in str(o["rules"])]  # MIG is opt-in
