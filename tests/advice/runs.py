"""Running advice the way the page does, for tests: start, execute in the test process, read the page."""

from __future__ import annotations

from django.test import Client


def advice_page(deployment, *, hours: float, attainment: float) -> str:
    """The advice page of a finished run on the deployment's own traffic, as a viewer sees it."""
    from advice import services
    from tests.factories import UserFactory

    user = UserFactory(username="sre", role="viewer")
    run = services.advice_start(
        user=user,
        deployment=deployment,
        trace=None,
        hours=hours,
        rate_multiplier=1.0,
        spike=None,
        slo=None,
        attainment=attainment,
        enqueue=lambda run_id: None,
    )
    assert services.advice_execute(run_id=run.id).status == "done"
    client = Client()
    client.force_login(user)
    return client.get(f"/advice/{run.id}/").content.decode()
