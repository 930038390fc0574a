"""Secret files are read only from the configured folders, checked again at every read."""

from __future__ import annotations

import pytest

from fleet.backends.base import BackendError
from fleet.backends.registry import UnavailableMetricsBackend, cluster_backend, metrics_backend, prometheus_backend
from fleet.secret_files import secret_path_error
from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db


def test_it_allows_the_data_folder_and_run_secrets_by_default(settings):
    assert settings.SCALEDECK_SECRET_DIRS[:2] == [str(settings.DATA_DIR), "/run/secrets"]
    assert secret_path_error(str(settings.DATA_DIR / "kubeconfig"), what="kubeconfig") is None
    assert secret_path_error("/run/secrets/prometheus-token", what="the token file") is None
    assert "is outside" in secret_path_error("/run/secrets/../../etc/passwd", what="the token file")


def test_it_adds_folders_from_the_setting(settings, tmp_path):
    settings.SCALEDECK_SECRET_DIRS = [str(tmp_path / "a"), str(tmp_path / "b")]

    assert secret_path_error(str(tmp_path / "b" / "token"), what="the token file") is None
    assert secret_path_error(str(tmp_path / "c" / "token"), what="the token file") is not None


def test_it_refuses_a_token_file_edited_into_the_row_and_sends_nothing(settings, tmp_path):
    settings.SCALEDECK_SECRET_DIRS = [str(tmp_path / "secrets")]
    outside = tmp_path / "elsewhere" / "token"
    outside.parent.mkdir()
    outside.write_text("not-for-prometheus")
    cluster = ClusterFactory(prometheus_url="http://prometheus:9090", prometheus_bearer_token_file=str(outside))

    backend = metrics_backend(cluster)

    assert isinstance(backend, UnavailableMetricsBackend)
    assert backend.reason.startswith(f"Prometheus token file {outside} is outside the folders")
    assert "not-for-prometheus" not in backend.reason
    # Callers that speak PromQL themselves get the same reason as an error, never a backend.
    with pytest.raises(BackendError, match=f"^Prometheus token file {outside} is outside the folders"):
        prometheus_backend(cluster)


def test_a_cluster_without_prometheus_has_no_prometheus_backend():
    cluster = ClusterFactory(name="lab", prometheus_url="")

    with pytest.raises(BackendError, match="^no Prometheus URL configured for cluster lab$"):
        prometheus_backend(cluster)


def test_it_refuses_a_password_file_swapped_for_a_link_after_it_was_set(settings, tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    settings.SCALEDECK_SECRET_DIRS = [str(secrets)]
    (secrets / "password").symlink_to("/etc/hostname")
    cluster = ClusterFactory(
        prometheus_url="http://prometheus:9090",
        prometheus_basic_auth_user="u",
        prometheus_basic_auth_password_file=str(secrets / "password"),
    )

    assert "is outside the folders" in metrics_backend(cluster).reason


def test_it_refuses_a_kubeconfig_outside_the_folders_when_connecting(settings, fake_kube, fake_kubeconfig, tmp_path):
    settings.SCALEDECK_SECRET_DIRS = [str(tmp_path / "secrets")]
    cluster = ClusterFactory(kubeconfig_path=str(fake_kubeconfig))

    with pytest.raises(BackendError, match="is outside the folders ScaleDeck reads secrets from"):
        cluster_backend(cluster).snapshot()
    assert fake_kube.requests == []


def test_it_never_reads_scaledecks_own_secret_files_for_a_cluster(settings, monkeypatch):
    key_file = settings.DATA_DIR / "secret-key"
    monkeypatch.setenv("SCALEDECK_SECRET_KEY_FILE", str(key_file))

    assert secret_path_error(str(key_file), what="the Prometheus token file") == (
        f"the Prometheus token file {key_file} is one of ScaleDeck's own secrets (a *_FILE setting); "
        "it is never sent anywhere"
    )
    assert secret_path_error(str(settings.DATA_DIR / "prometheus-token"), what="the Prometheus token file") is None
