"""A Slack link scoped like a token: its commands see and scale only its clusters and namespaces
(outside them a deployment is "not there", as a scoped token's reads are 404), and every link
change is in the audit list."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from accounts.models import AuditEntry, AuditKind
from chatops.models import SlackUserLink
from fleet.backends.base import DeploymentMetrics
from scaling.models import ScaleAction
from tests.chatops.test_views_slack_scale import SECRET, buttons, command, press
from tests.factories import ClusterFactory, ModelDeploymentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _signing_secret(settings):
    settings.SCALEDECK_SLACK_SIGNING_SECRET = SECRET


def ask(text: str) -> str:
    return command(text, user_id="U123").json()["text"]


@pytest.fixture
def two_teams(fake_metrics):
    UserFactory(username="alice", role="operator")
    call_command("chatops_link", "--slack-user", "U123", "--user", "alice", "--namespaces", "team-search")
    prod = ClusterFactory(name="prod")
    ModelDeploymentFactory(cluster=prod, namespace="team-search", name="embed", ttft_slo_seconds=2.0)
    ModelDeploymentFactory(cluster=prod, namespace="llm", name="chat", ttft_slo_seconds=2.0)
    fake_metrics.metrics[("llm", "chat")] = DeploymentMetrics(ttft_p95_seconds=3.0)
    fake_metrics.metrics[("team-search", "embed")] = DeploymentMetrics(ttft_p95_seconds=2.5)


def test_status_counts_only_the_link_s_namespaces(two_teams):
    text = ask("status")

    assert "*prod*: 1 deployments" in text and "team-search/embed (2.50 s > 2.00 s)" in text
    assert "llm/chat" not in text


def test_why_outside_the_scope_is_no_deployment(two_teams):
    assert ask("why llm/chat") == "No deployment llm/chat."
    assert "team-search/embed" in ask("why team-search/embed")


def test_scale_outside_the_scope_is_no_deployment_and_writes_nothing(two_teams):
    assert ask('scale llm/chat 4 "launch"') == "No deployment llm/chat."
    assert not ScaleAction.objects.exists()


def test_a_confirm_after_the_scope_narrowed_is_refused(keda_chat, slack_hooks, run_on_commit):
    hook, received = slack_hooks
    confirm = buttons(command('scale llm/chat 4 "launch"').json())["scale_confirm"]
    call_command("chatops_link", "--slack-user", "U1", "--user", "alice", "--namespaces", "team-search")

    response = run_on_commit(press, confirm, hook=hook)

    assert response.json()["text"] == "This token's scope does not include this cluster or namespace."
    assert not ScaleAction.objects.filter(request__dry_run=False).exists() and received == []


@pytest.fixture
def keda_chat(world):
    deployment = world.deployment("chat", replicas=2)
    world.keda(deployment, min_replicas=1, max_replicas=8)
    world.quota(hard=16, used=4)
    UserFactory(username="alice", role="operator")
    call_command("chatops_link", "--slack-user", "U1", "--user", "alice")
    return deployment


def test_links_are_made_changed_and_audited_with_their_scope(db):
    UserFactory(username="alice")
    UserFactory(username="bob")
    call_command("chatops_link", "--slack-user", "U1", "--user", "alice", "--clusters", "prod")
    call_command("chatops_link", "--slack-user", "U1", "--user", "bob", "--namespaces", "b,a")

    link = SlackUserLink.objects.get()
    assert (link.user.username, link.clusters, link.namespaces) == ("bob", [], ["a", "b"])
    made, changed = AuditEntry.objects.filter(kind=AuditKind.SLACK_LINK).order_by("id")
    assert (made.before, made.after) == (None, {"user": "alice", "clusters": ["prod"], "namespaces": []})
    assert changed.after == {"user": "bob", "clusters": [], "namespaces": ["a", "b"]}
    assert changed.actor_label == "manage.py chatops_link" and changed.object_label == "Slack user U1"


def test_a_malformed_scope_is_refused_and_nothing_is_linked(db):
    UserFactory(username="alice")
    with pytest.raises(CommandError, match='"Team_A" is not a namespace name'):
        call_command("chatops_link", "--slack-user", "U1", "--user", "alice", "--namespaces", "Team_A")
    assert not SlackUserLink.objects.exists() and not AuditEntry.objects.exists()


def test_a_link_made_and_deleted_in_the_admin_is_audited(client):
    root = UserFactory(username="root", role="admin", is_staff=True, is_superuser=True)
    alice = UserFactory(username="alice")
    client.force_login(root)

    made = client.post(
        "/admin/chatops/slackuserlink/add/",
        {"slack_user_id": "U7", "user": alice.id, "clusters": "[]", "namespaces": '["llm"]'},
    )
    link = SlackUserLink.objects.get()
    deleted = client.post(f"/admin/chatops/slackuserlink/{link.pk}/delete/", {"post": "yes"})

    assert (made.status_code, deleted.status_code) == (302, 302)
    rows = list(AuditEntry.objects.filter(kind=AuditKind.SLACK_LINK).order_by("id"))
    assert [(r.actor_label, r.before is None, r.after is None) for r in rows] == [
        ("root", True, False),
        ("root", False, True),
    ]
    assert rows[0].after["namespaces"] == ["llm"] and not SlackUserLink.objects.exists()
