"""A page a role may not open answers a styled 403 page, without a traceback in the log."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_it_shows_a_viewer_the_nav_and_the_role_an_operator_page_needs(caplog):
    client = Client()
    client.force_login(UserFactory(username="vera", role="viewer"))

    with caplog.at_level(logging.INFO):
        response = client.get(reverse("scaling:rule-create"))

    assert response.status_code == 403
    html = response.content.decode()
    assert 'class="mainnav"' in html and "<title>Not allowed" in html
    assert "needs the <strong>operator</strong> role" in html and "the <strong>viewer</strong> role" in html
    assert not [r for r in caplog.records if r.exc_info], "a 403 is not worth a traceback"


def test_it_tells_an_operator_a_quota_page_needs_the_admin_role():
    client = Client()
    client.force_login(UserFactory(username="olga", role="operator"))

    response = client.get(reverse("scaling:quota-edit", args=[1]))

    assert response.status_code == 403
    assert "needs the <strong>admin</strong> role" in response.content.decode()
