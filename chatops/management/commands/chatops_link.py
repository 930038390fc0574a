"""`manage.py chatops_link --slack-user U123 --user NAME`: who a Slack user is in ScaleDeck."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from chatops.models import SlackUserLink


class Command(BaseCommand):
    help = "Link a Slack user id to a ScaleDeck user (slash commands then run with that user's role)."

    def add_arguments(self, parser):
        parser.add_argument("--slack-user", required=True, help="Slack user id, e.g. U0123ABCD")
        parser.add_argument("--user", required=True, help="ScaleDeck username")

    def handle(self, *args, **options):
        slack_user = options["slack_user"].strip()
        if not slack_user or len(slack_user) > 32 or not slack_user.isalnum():
            raise CommandError(f"{slack_user[:40]!r} is not a Slack user id (letters and digits, e.g. U0123ABCD).")
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No ScaleDeck user named {options['user'][:150]!r}.")
        link, created = SlackUserLink.objects.update_or_create(slack_user_id=slack_user, defaults={"user": user})
        self.stdout.write(f"{'Linked' if created else 'Relinked'} Slack user {slack_user} to {user.get_username()}.")
