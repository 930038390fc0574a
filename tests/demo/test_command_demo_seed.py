"""The demo's users: the admin opens /admin/, the others do not see it."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from demo.management.commands.demo_seed import demo_users_ensure

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_users(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    demo_users_ensure(password="pw")


def logged_in(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password="pw")
    return client


def test_it_lets_the_demo_admin_open_the_admin_and_edit_prices(demo_users):
    client = logged_in("admin")

    index = client.get(reverse("admin:index"))
    prices = client.get(reverse("admin:costing_instanceprice_changelist"))

    assert index.status_code == 200 and "Site administration" in index.content.decode()
    assert prices.status_code == 200


def test_it_links_the_admin_in_the_nav_for_admins_only(demo_users):
    admin_page = logged_in("admin").get(reverse("fleet:overview")).content.decode()
    operator_page = logged_in("operator").get(reverse("fleet:overview")).content.decode()

    assert f'href="{reverse("admin:index")}"' in admin_page
    assert f'href="{reverse("admin:index")}"' not in operator_page


def test_it_keeps_the_operator_and_viewer_out_of_the_admin(demo_users):
    for username in ("operator", "viewer"):
        response = logged_in(username).get(reverse("admin:index"))
        assert response.status_code == 302  # to the admin's login


def test_it_is_idempotent(demo_users):
    demo_users_ensure(password="pw")

    assert logged_in("admin").get(reverse("admin:index")).status_code == 200
