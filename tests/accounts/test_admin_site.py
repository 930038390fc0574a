"""/admin/ needs ScaleDeck's admin role, not only Django's staff flag."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def staff(role: str, **fields) -> Client:
    user = UserFactory(role=role, is_staff=True, **fields)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", ["viewer", "operator", ""])
def test_it_keeps_staff_without_the_admin_role_out(role):
    for path in ("/admin/", "/admin/fleet/cluster/", "/admin/accounts/apitoken/"):
        response = staff(role).get(path)

        assert response.status_code == 302, path
        assert response["Location"].startswith("/admin/login/")


def test_it_sends_a_stranger_to_its_own_login_page_not_the_sites():
    response = Client().get("/admin/fleet/cluster/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/fleet/cluster/"


def test_it_lets_a_staff_admin_in():
    assert staff("admin").get("/admin/").status_code == 200


def test_it_lets_a_superuser_in():
    assert staff("", is_superuser=True).get("/admin/fleet/cluster/").status_code == 200


def test_it_keeps_an_admin_who_is_not_staff_out():
    client = Client()
    client.force_login(UserFactory(role="admin"))

    assert client.get("/admin/").status_code == 302


def test_it_refuses_an_operator_who_is_staff_at_the_admin_login():
    UserFactory(username="ops", role="operator", is_staff=True)

    client = Client()
    response = client.post("/admin/login/?next=/admin/", {"username": "ops", "password": "pw"})

    assert response.status_code == 200  # the login form again, not a redirect into the admin
    assert "The admin needs ScaleDeck&#x27;s admin role." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_admin_login_is_limited_like_the_main_login(settings):
    settings.SCALEDECK_LOGIN_MAX_FAILURES = 3
    UserFactory(username="root", role="admin", is_staff=True)  # password "pw"
    client = Client(REMOTE_ADDR="10.0.0.9")

    for _ in range(3):
        assert client.post("/admin/login/", {"username": "root", "password": "wrong"}).status_code == 200
    locked = client.post("/admin/login/", {"username": "root", "password": "pw"})

    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert "Too many failed sign-in attempts for root from your address. Try again in 15 minutes." in (
        locked.content.decode()
    )
    assert "_auth_user_id" not in client.session
    # the two doors share one count: the main login is locked for the pair too
    assert client.post("/accounts/login/", {"username": "root", "password": "pw"}).status_code == 429
    assert (
        Client(REMOTE_ADDR="10.0.0.10").post("/admin/login/", {"username": "root", "password": "pw"}).status_code == 302
    )


def test_tokens_cannot_be_edited_or_deleted_in_the_admin_and_revoking_there_is_audited():
    from accounts.models import ApiToken
    from audit.selectors import AuditFilter, audit_rows
    from tests.factories import ApiTokenFactory

    client = staff("admin", is_superuser=True)  # every model permission: only the ModelAdmin stands in the way
    token = ApiTokenFactory(role="operator", namespaces=["team-search"])
    page = f"/admin/accounts/apitoken/{token.pk}/change/"

    client.post(page, {"role": "admin", "namespaces": "[]", "name": "renamed", "read_only": "on"})
    token.refresh_from_db()
    assert (token.role, token.namespaces) == ("operator", ["team-search"])
    assert client.post(f"/admin/accounts/apitoken/{token.pk}/delete/", {"post": "yes"}).status_code == 403
    assert 'name="role"' not in client.get(page).content.decode()

    response = client.post("/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})

    assert response.status_code == 302, response.content[:400]
    token.refresh_from_db()
    assert token.revoked_at is not None
    _, rows = audit_rows(f=AuditFilter(kinds=("token",)))
    revoked = [r for r in rows if r["reason"] == "revoked in the Django admin"]
    assert len(revoked) == 1 and revoked[0]["after"]["revoked_at"]
    assert ApiToken.objects.filter(pk=token.pk).exists()
