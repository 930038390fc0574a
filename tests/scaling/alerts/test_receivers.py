import pytest

from core.errors import ApplicationError
from scaling.alerts.models import Receiver
from scaling.alerts.receivers import receiver_create, receiver_url, receivers_for


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "example.com/hook", "http:///nohost",
                                 "http://exa mple.com/"])  # fmt: skip
def test_it_refuses_a_url_that_is_not_http(url):
    with pytest.raises(ApplicationError) as refused:
        receiver_create(actor="admin", data={"name": "x", "kind": "webhook", "url": url})
    assert refused.value.field == "url"
    assert not Receiver.objects.exists()


@pytest.mark.django_db
def test_it_stores_the_url_encrypted_and_shows_only_scheme_and_host():
    receiver = receiver_create(
        actor="admin", data={"name": "x", "kind": "slack", "url": "https://hooks.slack.com/services/T0/B0/secret"}
    )
    assert "secret" not in receiver.url_encrypted
    assert receiver.url_hint == "https://hooks.slack.com/…"
    assert receiver_url(receiver) == "https://hooks.slack.com/services/T0/B0/secret"


@pytest.mark.django_db
def test_it_refuses_unknown_severities_and_events():
    with pytest.raises(ApplicationError) as refused:
        receiver_create(
            actor="admin", data={"name": "x", "kind": "webhook", "url": "http://a/", "severities": ["urgent"]}
        )
    assert refused.value.field == "severities"
    with pytest.raises(ApplicationError):
        receiver_create(
            actor="admin", data={"name": "x", "kind": "webhook", "url": "http://a/", "events": ["everything"]}
        )


def test_it_picks_receivers_by_event_severity_and_namespace():
    every = Receiver(name="every", events=["alerts"], severities=[], namespaces=[])
    team = Receiver(name="team", events=["alerts"], severities=["page"], namespaces=["team-a"])
    actions = Receiver(name="actions", events=["actions"])
    chosen = receivers_for([every, team, actions], event="alerts", severity="page", namespace="team-a")
    assert [r.name for r in chosen] == ["every", "team"]
    assert [r.name for r in receivers_for([every, team], event="alerts", severity="page", namespace="team-b")] == [
        "every"
    ]
    # A node's alert has no namespace: only receivers of every namespace get it.
    assert [r.name for r in receivers_for([every, team], event="alerts", severity="page", namespace=None)] == ["every"]


@pytest.mark.django_db
def test_it_reads_the_url_from_a_mounted_file_and_stores_none(tmp_path):
    secret = tmp_path / "oncall-webhook-url"
    secret.write_text("https://hooks.example.com/T/B/secret\n")
    receiver = receiver_create(actor="admin", data={"name": "x", "kind": "webhook", "url_file": str(secret)})
    assert receiver.url_encrypted == "" and receiver.url_hint == "(read from a file)"
    assert receiver_url(receiver) == "https://hooks.example.com/T/B/secret"


@pytest.mark.django_db
def test_it_refuses_a_url_file_outside_the_secret_folders():
    with pytest.raises(ApplicationError) as refused:
        receiver_create(actor="admin", data={"name": "x", "kind": "webhook", "url_file": "/etc/passwd"})
    assert refused.value.field == "url_file"
    assert not Receiver.objects.exists()
