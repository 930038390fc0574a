"""Log lines carry time, level, logger, message and context; JSON on demand; no secret ever."""

from __future__ import annotations

import io
import json
import logging
import logging.config

import pytest
from django.conf import settings as django_settings

from fleet.models import Cluster
from fleet.services import cluster_refresh
from ops.logs import logging_about, logging_config, redact
from tests.factories import ApiTokenFactory, ModelDeploymentFactory

API_TOKEN_USER = "slack-bot"


@pytest.fixture
def log_lines():
    """Configure logging as settings would with a format; return a reader of the lines written."""

    def configure(fmt: str):
        buffer = io.StringIO()
        config = logging_config(fmt=fmt, level="INFO")
        config["handlers"]["console"]["stream"] = buffer
        logging.config.dictConfig(config)
        return lambda: [line for line in buffer.getvalue().splitlines() if line.strip()]

    yield configure
    logging.config.dictConfig(django_settings.LOGGING)


def test_it_writes_one_json_object_per_line_with_time_level_logger_and_message(log_lines):
    lines = log_lines("json")
    with logging_about(cluster_id=7, action_id=42):
        logging.getLogger("scaling.services.execution").warning("patched %s", "llm/llama")

    [line] = lines()
    record = json.loads(line)
    assert record["level"] == "WARNING"
    assert record["logger"] == "scaling.services.execution"
    assert record["message"] == "patched llm/llama"
    assert record["time"][:4].isdigit()
    assert (record["cluster_id"], record["action_id"]) == (7, 42)


def test_it_writes_text_lines_with_the_same_fields(log_lines):
    lines = log_lines("text")
    with logging_about(action_id=42):
        logging.getLogger("fleet.sync").info("synced")

    [line] = lines()
    date, clock, level, logger, *rest = line.split(" ")
    assert (level, logger, rest) == ("INFO", "fleet.sync", ["synced", "[action_id=42]"])


def test_it_names_the_request_and_the_api_token_behind_a_line(client, db, log_lines):
    token = ApiTokenFactory(name="chatops", user__username=API_TOKEN_USER)
    lines = log_lines("json")

    response = client.get(
        "/api/v1/deployments/987654/", HTTP_AUTHORIZATION=f"Bearer {token.raw}", HTTP_X_REQUEST_ID="req-0123456789"
    )

    assert response.status_code == 404
    assert response["X-Request-ID"] == "req-0123456789"
    [line] = [json.loads(x) for x in lines() if "987654" in x]
    assert line["request_id"] == "req-0123456789"
    assert (line["user"], line["token_name"]) == (API_TOKEN_USER, "chatops")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_no_secret_reaches_a_log_line(client, db, fake_kube, tmp_path, log_lines, fmt):
    token = ApiTokenFactory(name="chatops")
    kube_secret = "kube-credential-5f2e9a7c1b3d"
    kubeconfig = fake_kube.kubeconfig(tmp_path / "kubeconfig", token=kube_secret)
    cluster = Cluster.objects.create(
        name="prod", backend=Cluster.Backend.KUBERNETES, kubeconfig_path=str(kubeconfig), kube_context="fake"
    )
    ModelDeploymentFactory(cluster=cluster)
    webhook = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"
    db_password = "pg-pass-8d7f6e"
    lines = log_lines(fmt)

    client.get("/api/v1/deployments/", HTTP_AUTHORIZATION=f"Bearer {token.raw}")
    client.get("/api/v1/deployments/", HTTP_AUTHORIZATION=f"Bearer {token.raw}x")  # refused: 401
    result = cluster_refresh(cluster=cluster)  # the API server refuses the kubeconfig's token: 401
    log = logging.getLogger("scaling.alerts")
    log.warning("delivering to %s failed", webhook)
    log.error("cannot connect to postgresql://scaledeck:%s@db:5432/scaledeck", db_password)
    log.info("request headers {'Authorization': 'Bearer %s'}", token.raw)
    try:
        raise RuntimeError(f"token={kube_secret}")
    except RuntimeError:
        log.exception("sync crashed")

    written = "\n".join(lines())
    assert not result.ok and "401" in result.error
    assert "Unauthorized: /api/v1/deployments/" in written  # the refused request was logged...
    assert "delivering to https://hooks.slack.com/services/***" in written
    for secret in (token.raw, kube_secret, "XXXXsecretXXXX", db_password):
        assert secret not in written  # ...and no secret with it


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Authorization: Bearer abcdefgh12345678", "Authorization: Bearer ***"),
        ("redis://:hunter22@redis:6379/0", "redis://:***@redis:6379/0"),
        ("password=hunter22 user=bob", "password=*** user=bob"),
        ('{"token": "abc12345678"}', '{"token": "***"}'),
        ("token sdk_AbCdEf0123456789 used", "token sdk_*** used"),
        ("scaled llm/llama to 6 replicas", "scaled llm/llama to 6 replicas"),
        ("token chatops created", "token chatops created"),
    ],
)
def test_it_redacts_credentials_and_leaves_ordinary_words(line, expected):
    assert redact(line) == expected
