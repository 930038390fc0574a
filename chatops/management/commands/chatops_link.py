"""`manage.py chatops_link --slack-user U123 --user NAME [--namespaces a,b] [--clusters c1]`: who a
Slack user is in ScaleDeck, and optionally the only clusters and namespaces its commands reach."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from chatops.services import slack_link_set
from core.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Link a Slack user id to a ScaleDeck user (slash commands then run with that user's role, "
        "within the clusters and namespaces given)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--slack-user", required=True, help="Slack user id, e.g. U0123ABCD")
        parser.add_argument("--user", required=True, help="ScaleDeck username")
        parser.add_argument("--namespaces", default="", help="comma-separated: the only namespaces it may touch")
        parser.add_argument("--clusters", default="", help="comma-separated: the only clusters it may touch")

    def handle(self, *args, **options):
        try:
            link, created = slack_link_set(
                slack_user_id=options["slack_user"],
                username=options["user"],
                clusters=options["clusters"].split(","),
                namespaces=options["namespaces"].split(","),
                actor="manage.py chatops_link",
            )
        except ApplicationError as exc:
            raise CommandError(f"{exc.message[:1].upper()}{exc.message[1:]}.") from None
        scope = "; ".join(
            part
            for part in (
                f"clusters {', '.join(link.clusters)}" if link.clusters else "",
                f"namespaces {', '.join(link.namespaces)}" if link.namespaces else "",
            )
            if part
        )
        self.stdout.write(
            f"{'Linked' if created else 'Relinked'} Slack user {link.slack_user_id} to "
            f"{link.user.get_username()}{f' ({scope})' if scope else ''}."
        )
