from tests.fleet.conftest import api, fake_metrics, operator, viewer  # noqa: F401 - shared fixtures
