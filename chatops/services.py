"""Who a Slack user is in ScaleDeck: link a Slack user id to a user, with an optional scope. A link
grants what a token grants (the user's role, within its clusters and namespaces), so every change
is audited as a token's is."""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.audit import audit_record
from accounts.models import AuditKind
from accounts.services import scope_names
from chatops.models import SlackUserLink
from core.errors import ApplicationError

_SLACK_USER_ID = re.compile(r"^[A-Z0-9]{2,32}$")


def _fields(link: SlackUserLink) -> dict:
    return {"user": link.user.get_username(), "clusters": link.clusters, "namespaces": link.namespaces}


@transaction.atomic
def slack_link_set(
    *, slack_user_id: str, username: str, clusters: Sequence[str] = (), namespaces: Sequence[str] = (), actor=None
) -> tuple[SlackUserLink, bool]:
    """Link (or relink) a Slack user id to the ScaleDeck user `username`, scoped to `clusters` and
    `namespaces` (empty: all). Returns (link, created)."""
    slack_user_id = slack_user_id.strip()
    if not _SLACK_USER_ID.match(slack_user_id):
        raise ApplicationError(
            f'"{slack_user_id[:40]}" is not a Slack user id (capital letters and digits, e.g. U0123ABCD)',
            field="slack_user",
        )
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ApplicationError(f'no ScaleDeck user named "{username[:150]}"', field="user")
    scope = {
        "clusters": scope_names(clusters, "cluster", "clusters"),
        "namespaces": scope_names(namespaces, "namespace", "namespaces"),
    }
    link = SlackUserLink.objects.select_for_update().select_related("user").filter(slack_user_id=slack_user_id).first()
    before = _fields(link) if link is not None else None
    created = link is None
    if created:
        link = SlackUserLink.objects.create(slack_user_id=slack_user_id, user=user, **scope)
    else:
        link.user, link.clusters, link.namespaces = user, scope["clusters"], scope["namespaces"]
        link.save(update_fields=["user", "clusters", "namespaces"])
    audit_record(
        actor=actor,
        kind=AuditKind.SLACK_LINK,
        object=f"Slack user {slack_user_id}",
        object_id=link.pk,
        before=before,
        after=_fields(link),
    )
    return link, created
