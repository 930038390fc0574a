"""GET /api/v1/deployments/{id}/manifests/?autoscaler=keda|hpa: best-practice manifests as one
YAML stream, valid for Kubernetes (kubernetes-validate --strict) and for KEDA's CRD schema."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from accounts.models import Role
from tests.factories import AutoscalerFactory, GpuNodeFactory, ModelDeploymentFactory, PodFactory

pytestmark = pytest.mark.django_db
KEDA_CRD = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "crds" / "keda.sh_scaledobjects.yaml"


def strict(schema):
    """A CRD schema that refuses unknown fields, as `kubectl apply --validate=strict` does."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def keda_schema():
    if not KEDA_CRD.exists():
        pytest.skip(f"KEDA's CRD is not at {KEDA_CRD} (../shared/data/ next to the repo)")
    crd = next(d for d in yaml.safe_load_all(KEDA_CRD.read_text()) if d)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    return strict(version["schema"]["openAPIV3Schema"])


def validate(documents, keda_schema):
    for doc in documents:
        if doc["kind"] == "ScaledObject":
            jsonschema.validate(doc, keda_schema)
        else:
            kubernetes_validate.validate(doc, latest_version(), strict=True)


@pytest.fixture
def deployment():
    deployment = ModelDeploymentFactory(
        name="llama-70b",
        model="meta-llama/Llama-3.1-70B-Instruct",
        gpu_per_replica=4,
        tensor_parallel=4,
        replicas_desired=2,
        max_model_len=16384,
        gpu_memory_utilization=0.92,
    )
    AutoscalerFactory(deployment=deployment, min_replicas=2, max_replicas=6)
    node = GpuNodeFactory(cluster=deployment.cluster, gpu_product="NVIDIA-H100-80GB-HBM3")
    PodFactory(deployment=deployment, node=node)
    return deployment


def get(api_as, deployment, query=""):
    return api_as(Role.VIEWER).get(f"/api/v1/deployments/{deployment.id}/manifests/{query}")


def test_it_exports_keda_manifests_that_validate(api_as, deployment, keda_schema):
    response = get(api_as, deployment)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/yaml"
    documents = list(yaml.safe_load_all(response.content))
    assert [d["kind"] for d in documents] == [
        "PersistentVolumeClaim",
        "Job",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ScaledObject",
    ]
    validate(documents, keda_schema)
    claim, _, workload, _, _, scaler = documents
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    pod = workload["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert workload["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == ["NVIDIA-H100-80GB-HBM3"]
    assert (
        pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"]
        == "kubernetes.io/hostname"
    )
    assert container["livenessProbe"]["initialDelaySeconds"] >= 2 * 120
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert pod["terminationGracePeriodSeconds"] == 600 and "preStop" in container["lifecycle"]
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "32Gi"}} in pod["volumes"]
    assert container["args"][container["args"].index("--tensor-parallel-size") + 1] == "4"
    assert (scaler["spec"]["minReplicaCount"], scaler["spec"]["maxReplicaCount"]) == (2, 6)
    assert "vllm:num_requests_waiting" in scaler["spec"]["triggers"][0]["metadata"]["query"]


def test_it_exports_an_hpa_on_pods_metrics_with_the_behavior_shape(api_as, deployment, keda_schema):
    documents = list(yaml.safe_load_all(get(api_as, deployment, "?autoscaler=hpa").content))
    validate(documents, keda_schema)
    hpa = documents[-1]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert {m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"]} == {
        "vllm_num_requests_waiting",
        "dcgm_fi_dev_gpu_util",
    }
    assert set(hpa["spec"]["behavior"]) == {"scaleUp", "scaleDown"}


def test_a_mig_deployment_requests_its_slice(api_as, keda_schema):
    deployment = ModelDeploymentFactory(
        name="Mistral_7B", model="mistralai/Mistral-7B-v0.3", gpu_resource="nvidia.com/mig-3g.40gb"
    )
    documents = list(yaml.safe_load_all(get(api_as, deployment).content))
    validate(documents, keda_schema)
    workload = documents[2]
    assert workload["metadata"]["name"] == "mistral-7b"
    assert (
        workload["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/mig-3g.40gb"] == "1"
    )
    assert "podAntiAffinity" not in workload["spec"]["template"]["spec"].get("affinity", {})


def test_the_validation_in_these_tests_refuses_an_unknown_field(api_as, deployment, keda_schema):
    documents = list(yaml.safe_load_all(get(api_as, deployment).content))
    documents[2]["spec"]["template"]["spec"]["containers"][0]["livenessDelay"] = 240
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(documents[2:3], keda_schema)
    documents[-1]["spec"]["minReplicas"] = 2
    with pytest.raises(jsonschema.ValidationError):
        validate(documents[-1:], keda_schema)


def test_an_unknown_autoscaler_is_refused(api_as, deployment):
    response = get(api_as, deployment, "?autoscaler=cpu")
    assert response.status_code == 400
    assert "'cpu' is not keda or hpa" in str(response.json())


def test_it_exports_a_kustomize_base_as_a_zip(api_as, deployment, keda_schema):
    import io
    import zipfile

    response = get(api_as, deployment, "?autoscaler=hpa&format=kustomize")

    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].endswith('-kustomize.zip"')
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    kustomization = yaml.safe_load(archive.read("kustomization.yaml"))
    assert kustomization["kind"] == "Kustomization" and kustomization["namespace"] == deployment.namespace
    documents = [yaml.safe_load(archive.read(name)) for name in kustomization["resources"]]
    assert sorted(archive.namelist()) == sorted([*kustomization["resources"], "kustomization.yaml"])
    stream = list(yaml.safe_load_all(get(api_as, deployment, "?autoscaler=hpa").content))
    assert documents == stream  # the same objects as the YAML stream, in the same order
    validate(documents, keda_schema)
    assert get(api_as, deployment, "?format=helm").status_code == 400
