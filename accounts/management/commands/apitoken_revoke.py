"""`manage.py apitoken_revoke TOKEN [--reason TEXT]`: TOKEN is the full token, its id, or the prefix shown in lists.

The revocation is immediate (the next request with it gets 401 saying it was revoked) and audited.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.services import api_token_find, api_token_revoke
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Revoke an API token, named by the full token, its id, or the prefix shown in lists."

    def add_arguments(self, parser):
        parser.add_argument("token")
        parser.add_argument("--reason", default="", help="why, for the audit")

    def handle(self, *args, token: str, reason: str, **options):
        try:
            row = api_token_find(token)
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        if api_token_revoke(token=row, actor="manage.py", reason=reason or "revoked with manage.py apitoken_revoke"):
            self.stdout.write(f"Revoked token {row.prefix}… (id {row.pk}, {row.name}, of {row.user.get_username()}).")
        else:
            self.stdout.write(
                f"Token {row.prefix}… (id {row.pk}) was already revoked on {row.revoked_at:%Y-%m-%d %H:%M} UTC."
            )
