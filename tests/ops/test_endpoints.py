"""/healthz and /readyz answer the kubelet (pod IP as Host, plain http) under production's host
and https rules, which still refuse and redirect everything else."""

from __future__ import annotations

import pytest
from django.db import connection

POD = "10.244.3.17:8000"


@pytest.fixture
def production_rules(settings):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["scaledeck.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_it_answers_a_kubelet_shaped_probe(client, db, production_rules, path):
    response = client.get(path, HTTP_HOST=POD, HTTP_USER_AGENT="kube-probe/1.30")
    assert response.status_code == 200, response.content


def test_it_still_refuses_a_foreign_host_and_redirects_users_to_https(client, db, production_rules):
    assert client.get("/", HTTP_HOST=POD).status_code == 400
    assert client.get("/accounts/login/", HTTP_HOST="evil.example.com").status_code == 400
    redirect = client.get("/accounts/login/", HTTP_HOST="scaledeck.example.com")
    assert redirect.status_code == 301
    assert redirect["Location"] == "https://scaledeck.example.com/accounts/login/"


def test_it_refuses_to_change_anything_through_a_probe_path(client, db, production_rules):
    response = client.post("/healthz", HTTP_HOST=POD)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_it_is_not_ready_while_the_database_does_not_answer(client, db, production_rules, monkeypatch):
    def refuse(*args, **kwargs):
        from django.db import OperationalError

        raise OperationalError("connection refused")

    with monkeypatch.context() as patched:
        patched.setattr(connection, "cursor", refuse)
        response = client.get("/readyz", HTTP_HOST=POD)
        # Liveness does not depend on the database: an outage must not restart every pod.
        alive = client.get("/healthz", HTTP_HOST=POD)
    assert response.status_code == 503
    assert response.content == b"database unavailable\n"
    assert alive.status_code == 200
