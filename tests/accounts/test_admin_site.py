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
