"""apitoken_create's scope and expiry options, and apitoken_revoke by full token, id or listed prefix."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import ApiToken, AuditEntry

pytestmark = pytest.mark.django_db


def run(name: str, *args: str) -> list[str]:
    out = io.StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_it_issues_a_scoped_read_only_token_with_its_expiry():
    raw = run(
        "apitoken_create",
        "--user",
        "search-bot",
        "--role",
        "operator",
        "--namespaces",
        "team-search,ml",
        "--clusters",
        "prod",
        "--expires-days",
        "7",
        "--read-only",
    )[-1]

    token = ApiToken.objects.get()
    assert raw.startswith(token.prefix)
    assert token.namespaces == ["ml", "team-search"] and token.clusters == ["prod"] and token.read_only
    assert (token.expires_at - token.created_at).days == 7


def test_it_refuses_a_bad_namespace_name_and_issues_nothing():
    with pytest.raises(CommandError, match='"Team Search" is not a namespace name'):
        run("apitoken_create", "--user", "bot", "--role", "viewer", "--namespaces", "Team Search")
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("how", ["full", "id", "prefix", "prefix…"])
def test_it_revokes_by_full_token_id_or_listed_prefix(how):
    raw = run("apitoken_create", "--user", "bot", "--role", "viewer")[-1]
    token = ApiToken.objects.get()
    ref = {"full": raw, "id": str(token.pk), "prefix": token.prefix, "prefix…": token.prefix + "…"}[how]

    lines = run("apitoken_revoke", ref)

    assert lines == [f"Revoked token {token.prefix}… (id {token.pk}, bot-viewer, of bot)."]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/clusters/").status_code == 401
    assert AuditEntry.objects.filter(kind="token", reason="revoked with manage.py apitoken_revoke").count() == 1


def test_it_says_when_nothing_matches():
    with pytest.raises(CommandError, match="no token matches"):
        run("apitoken_revoke", "sdk_nothing")
