"""Issue 3's two fake clusters, served over real HTTP: `prod` (the realistic cluster) and `edge`."""

from __future__ import annotations

import pytest

from tests.acceptance.issue3_world import edge_cluster
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

