"""The admin edits where a cluster's mig-parted ConfigMap is, refusing a name Kubernetes would not take."""

from __future__ import annotations

import pytest

from mig.models import ClusterMigConfig
from tests.factories import ClusterFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/admin/mig/clustermigconfig/"


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="root", role="admin", is_staff=True, is_superuser=True))
    return client


def test_an_admin_points_a_cluster_at_its_config_map(admin_client):
    cluster = ClusterFactory(name="prod")

    response = admin_client.post(f"{URL}add/", {"cluster": cluster.id, "config_map": "nvidia/custom-mig-config"})

    assert response.status_code == 302, response.content.decode()[:2000]
    assert ClusterMigConfig.objects.get().config_map == "nvidia/custom-mig-config"


@pytest.mark.parametrize("name", ["default-mig-parted-config", "GPU/x", "gpu-operator/", "a/b c"])
def test_a_name_that_is_not_namespace_slash_name_is_refused(admin_client, name):
    cluster = ClusterFactory(name="prod")

    response = admin_client.post(f"{URL}add/", {"cluster": cluster.id, "config_map": name})

    assert response.status_code == 200
    assert "give the ConfigMap as namespace/name" in response.content.decode()
    assert not ClusterMigConfig.objects.exists()
