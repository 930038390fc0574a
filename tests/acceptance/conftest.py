"""Issue 3's two fake clusters, served over real HTTP (`prod`, the realistic cluster, and `edge`), and
issue 5's world with its bots (`setup`)."""

from __future__ import annotations

import pytest

from tests.acceptance.issue3_world import edge_cluster
from tests.acceptance.issue5_world import Setup, issue5_setup
from tests.fakekube import objects as o
from tests.fakekube.server import FakeKubeApi


@pytest.fixture
def prod(fake_kube):
    fake_kube.load(o.realistic_cluster())
    return fake_kube


@pytest.fixture
def edge():
    with FakeKubeApi() as api:
        api.load(edge_cluster())
        yield api


@pytest.fixture
def setup(fake_kube: FakeKubeApi, fake_kubeconfig) -> Setup:
    return issue5_setup(fake_kube, fake_kubeconfig)
