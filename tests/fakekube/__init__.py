"""A fake Kubernetes API server over real HTTP, realistic object builders, and pytest fixtures."""

from tests.fakekube.server import FakeKubeApi, RecordedRequest, write_kubeconfig

__all__ = ["FakeKubeApi", "RecordedRequest", "write_kubeconfig"]
