from tests.fleet.conftest import api, fake_metrics, operator, viewer  # noqa: F401 - shared fixtures
from tests.scaling.conftest import run_on_commit, world  # noqa: F401 - the fake Kubernetes cluster
