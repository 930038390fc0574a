import pytest
from django.core.management import CommandError, call_command

from fleet.backends.registry import metrics_backend
from fleet.models import Cluster
from fleet.secret_files import secret_dirs

pytestmark = pytest.mark.django_db


@pytest.fixture
def kubeconfig(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\n")
    return path


def test_it_registers_a_cluster_with_prometheus_behind_a_service_monitor(kubeconfig, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")

    call_command(
        "cluster_add",
        "prod",
        "--kubeconfig",
        str(kubeconfig),
        "--namespaces",
        "llm-prod, team-a",
        "--prometheus-url",
        "http://prometheus:9090",
        "--prometheus-token-file",
        str(token),
        "--prometheus-namespace-label",
        "exported_namespace",
        "--prometheus-pod-label",
        "exported_pod",
        "--prometheus-timeout",
        "5",
        "--prometheus-gpu-pod-label",
        "exported_pod",
    )

    cluster = Cluster.objects.get(name="prod")
    assert cluster.namespaces == ["llm-prod", "team-a"]
    assert cluster.prometheus_bearer_token_file == str(token)
    assert (cluster.prometheus_namespace_label, cluster.prometheus_pod_label) == ("exported_namespace", "exported_pod")
    assert cluster.prometheus_timeout_seconds == 5
    assert (cluster.prometheus_gpu_namespace_label, cluster.prometheus_gpu_pod_label) == ("namespace", "exported_pod")
    backend = metrics_backend(cluster)
    assert (backend.gpu_namespace_label, backend.gpu_pod_label) == ("namespace", "exported_pod")
    assert "s3cret" not in str(Cluster.objects.values().get(name="prod"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prometheus-url", "ftp://x"], "is not an http(s) URL"),
        (["--prometheus-token-file", "/nonexistent/token"], "/nonexistent/token is outside the folders"),
        (["--prometheus-pod-label", "pod-name"], "is not a Prometheus label name"),
        (["--prometheus-timeout", "0"], "must be between 0 and 60 s"),
        (["--namespaces", "Bad_NS"], "is not a valid namespace name"),
    ],
)
def test_it_refuses_bad_options_with_one_line_and_registers_nothing(kubeconfig, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("cluster_add", "prod", "--kubeconfig", str(kubeconfig), *args)

    assert not Cluster.objects.exists()


def test_it_refuses_a_missing_kubeconfig_and_a_duplicate_name(kubeconfig, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("cluster_add", "prod", "--kubeconfig", str(tmp_path / "missing"))
    call_command("cluster_add", "prod", "--kubeconfig", str(kubeconfig))
    with pytest.raises(CommandError, match="already exists"):
        call_command("cluster_add", "prod", "--kubeconfig", str(kubeconfig))


@pytest.mark.parametrize(
    "url", ["http://prometheus:9090", "https://thanos.monitoring.svc.cluster.local/", "http://10.0.0.5:9090"]
)
def test_it_accepts_in_cluster_prometheus_urls(kubeconfig, url):
    call_command("cluster_add", "prod", "--kubeconfig", str(kubeconfig), "--prometheus-url", url)

    assert Cluster.objects.get(name="prod").prometheus_url == url


@pytest.mark.parametrize(
    ("option", "what"),
    [("--kubeconfig", "kubeconfig"), ("--prometheus-token-file", "the Prometheus token file")],
)
def test_it_refuses_secret_files_outside_the_secret_folders(kubeconfig, option, what):
    args = ["--prometheus-url", "http://prometheus:9090"] if option != "--kubeconfig" else []
    kube = ["--kubeconfig", str(kubeconfig)] if option != "--kubeconfig" else []

    with pytest.raises(CommandError) as exc:
        call_command("cluster_add", "prod", *kube, *args, option, "/etc/passwd")

    assert str(exc.value) == (
        f"{what} /etc/passwd is outside the folders ScaleDeck reads secrets from "
        f"({', '.join(str(d) for d in secret_dirs())}); move it there or add its folder to SCALEDECK_SECRET_DIRS"
    )
    assert not Cluster.objects.exists()


def test_it_refuses_a_symlink_from_a_secret_folder_to_a_file_outside(kubeconfig, tmp_path, settings):
    settings.SCALEDECK_SECRET_DIRS = [str(tmp_path / "secrets")]
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").symlink_to("/etc/passwd")

    with pytest.raises(CommandError, match="is outside the folders"):
        call_command(
            "cluster_add",
            "prod",
            "--in-cluster",
            "--prometheus-url",
            "http://prometheus:9090",
            "--prometheus-token-file",
            str(tmp_path / "secrets" / "token"),
        )
