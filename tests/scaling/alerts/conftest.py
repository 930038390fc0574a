from collections.abc import Iterator

import pytest

from tests.scaling.alerts.webhook_receiver import WebhookReceiver


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()
