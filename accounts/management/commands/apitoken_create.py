"""`manage.py apitoken_create --user NAME --role viewer|operator|admin [--name NAME]`.

Creates the user if needed (with that role, no password), issues a token and prints it as the
last line. The token is stored only as a hash: this is the one time it is shown.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import ROLE_RANK, Role
from accounts.services import api_token_create, user_ensure, user_role
from config.errors import ApplicationError


class Command(BaseCommand):
    help = "Issue an API token for a user (created if missing); prints the token as the last line."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True)
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--name", default="", help="what the token is for, e.g. 'slack-bot'")

    def handle(self, *args, user: str, role: str, name: str, **options):
        from django.contrib.auth import get_user_model

        try:
            existing = get_user_model().objects.filter(username=user).first()
            current = user_role(existing) if existing else None
            if existing is None or current is None or ROLE_RANK[Role(current)] < ROLE_RANK[Role(role)]:
                existing = user_ensure(username=user, role=role)
            token, raw = api_token_create(user=existing, name=name or f"{user}-{role}", role=role)
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Token {token.prefix}… for {user} (role {role}). Shown once; store it now:")
        self.stdout.write(raw)
