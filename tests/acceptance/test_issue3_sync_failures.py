"""Issue 3, "How it will be checked", continued: a sync that fails (a broken kubeconfig, an
unreachable or refusing API server, a timeout) exits with one line and keeps the last good rows;
a resync follows the cluster (world and checks: tests/acceptance/issue3_world.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fleet.models import Cluster, MigDevice, Pod
from tests.acceptance.issue3_world import (
    PROD_DEPLOYMENTS,
    TOKEN,
    add_and_sync_prod,
    api_client,
    assert_only_reads,
    bot_token_via_command,
    command,
    free_port,
    manage,
    reported_deployments,
    reported_nodes,
    stored_rows,
)
from tests.fakekube.server import FakeKubeApi, write_kubeconfig


def break_garbage_yaml(api: FakeKubeApi, kubeconfig: Path) -> None:
    kubeconfig.write_text(f"apiVersion: v1\nusers: [{{name: x, user: {{token: {TOKEN}}}\n  - ][: garbage")


def break_missing_kubeconfig(api: FakeKubeApi, kubeconfig: Path) -> None:
    kubeconfig.unlink()


def break_unreachable(api: FakeKubeApi, kubeconfig: Path) -> None:
    write_kubeconfig(kubeconfig, f"http://127.0.0.1:{free_port()}", TOKEN)


def break_401(api: FakeKubeApi, kubeconfig: Path) -> None:
    api.token = "rotated-token-9876543210"  # the kubeconfig's token is no longer accepted


def break_403(api: FakeKubeApi, kubeconfig: Path) -> None:
    api.fail("/api/v1/nodes", 403)


def break_500(api: FakeKubeApi, kubeconfig: Path) -> None:
    api.fail("/apis/apps/v1", 500)


def break_timeout(api: FakeKubeApi, kubeconfig: Path) -> None:
    Cluster.objects.filter(name="prod").update(request_timeout_seconds=1)
    api.delay(5, path="/api/v1/nodes")


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        (break_garbage_yaml, "is not a valid kubeconfig"),
        (break_missing_kubeconfig, "cannot be read"),
        (break_unreachable, "connection refused"),
        (break_401, "credentials refused (401)"),
        (break_403, "forbidden"),
        (break_500, "500"),
        (break_timeout, "no answer within 1 s"),
    ],
)
def test_a_failed_sync_exits_with_one_line_and_keeps_the_last_good_rows(
    prod, tmp_path, transactional_db, breakage, reason
):
    kubeconfig = add_and_sync_prod(prod, tmp_path)
    client = api_client(bot_token_via_command())
    nodes_before, deployments_before = reported_nodes(client, "prod"), reported_deployments(client, "prod")
    rows_before = stored_rows()
    last_ok = Cluster.objects.get(name="prod").last_sync_ok_at

    breakage(prod, kubeconfig)

    with pytest.raises(CommandError) as failed:
        command("cluster_sync", "prod")
    assert "\n" not in str(failed.value) and reason in str(failed.value)
    process = manage("cluster_sync", "prod", tmp_path=tmp_path)
    assert process.returncode != 0
    assert process.stdout == ""
    lines = process.stderr.splitlines()
    assert len(lines) == 1, process.stderr
    assert reason in lines[0]
    assert "Traceback" not in process.stderr and TOKEN not in process.stderr

    assert stored_rows() == rows_before
    assert reported_nodes(client, "prod") == nodes_before
    assert reported_deployments(client, "prod") == deployments_before
    cluster = Cluster.objects.get(name="prod")
    assert cluster.last_sync_status == Cluster.SyncStatus.FAILED
    assert reason in cluster.last_sync_error
    assert cluster.last_sync_ok_at == last_ok
    assert_only_reads(prod)


@pytest.mark.django_db
def test_a_resync_follows_the_cluster_and_marks_a_deleted_pod_gone(prod, tmp_path):
    add_and_sync_prod(prod, tmp_path)
    client = api_client(bot_token_via_command())
    llama = prod.get("Deployment", "team-a", "llama-3-70b")
    llama["spec"]["replicas"] = 4
    llama["status"]["readyReplicas"] = 3
    prod.load(llama)
    victim = next(p for p in Pod.objects.filter(deployment__name="mistral-7b", ready=False).order_by("name"))
    prod.delete("Pod", victim.namespace, victim.name)

    assert "prod: synced" in command("cluster_sync", "prod")

    deployments = reported_deployments(client, "prod")
    assert deployments[("team-a", "llama-3-70b")]["replicas"] == {"desired": 4, "ready": 3}
    unchanged = {k: v for k, v in deployments.items() if k != ("team-a", "llama-3-70b")}
    assert unchanged == {k: v for k, v in PROD_DEPLOYMENTS.items() if k != ("team-a", "llama-3-70b")}
    victim.refresh_from_db()  # still there: audit history and cost keep pointing at it
    assert victim.gone_at is not None
    assert not Pod.objects.alive().filter(pk=victim.pk).exists()
    assert not MigDevice.objects.filter(pod=victim).exists()  # its slice is free again
    assert_only_reads(prod)


@pytest.mark.django_db
def test_a_resync_of_an_unchanged_cluster_writes_only_its_status(prod, tmp_path):
    add_and_sync_prod(prod, tmp_path)

    with CaptureQueriesContext(connection) as ctx:
        out = command("cluster_sync", "prod")

    assert "no changes" in out
    writes = [q["sql"] for q in ctx.captured_queries if q["sql"].split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}]
    inventory = [sql for sql in writes if "fleet_" in sql and "fleet_cluster" not in sql.split("SET")[0]]
    assert inventory == []
