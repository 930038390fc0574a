"""apitoken_create never raises a user's role unless told to (--promote)."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import ApiToken, Membership
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def issue(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("apitoken_create", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_it_refuses_a_token_above_an_existing_users_role_and_changes_nothing():
    UserFactory(username="vera", role="viewer")

    with pytest.raises(CommandError) as exc:
        issue("--user", "vera", "--role", "admin")

    assert str(exc.value) == (
        "vera has the viewer role; an admin token would need more rights. Add --promote to make vera an admin first."
    )
    assert Membership.objects.get(user__username="vera").role == "viewer"
    assert not ApiToken.objects.exists()


def test_it_refuses_a_token_for_a_user_with_no_role():
    UserFactory(username="django-only", role="")

    with pytest.raises(CommandError, match="has the no role; a viewer token"):
        issue("--user", "django-only", "--role", "viewer")
    assert not Membership.objects.filter(user__username="django-only").exists()


def test_it_promotes_when_asked_and_says_so():
    UserFactory(username="vera", role="viewer")

    lines = issue("--user", "vera", "--role", "operator", "--promote")

    assert lines[0] == "vera is now operator (was viewer)."
    assert Membership.objects.get(user__username="vera").role == "operator"
    assert ApiToken.objects.get(user__username="vera").role == "operator"


def test_it_issues_a_lower_token_without_touching_the_role():
    UserFactory(username="ada", role="admin")

    issue("--user", "ada", "--role", "viewer")

    assert Membership.objects.get(user__username="ada").role == "admin"
    assert ApiToken.objects.get(user__username="ada").role == "viewer"


def test_it_creates_a_new_user_with_the_role():
    lines = issue("--user", "slack-bot", "--role", "operator")

    assert lines[-1].startswith("sdk_")
    assert Membership.objects.get(user__username="slack-bot").role == "operator"
