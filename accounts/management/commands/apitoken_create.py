"""`manage.py apitoken_create --user NAME --role viewer|operator|admin [--name NAME] [--promote]
[--namespaces ns1,ns2] [--clusters c1] [--expires-days N | --never-expires] [--read-only]`.

Creates the user if needed (with that role, no password), issues a token and prints it as the
last line. The token is stored only as a hash: this is the one time it is shown.

An existing user keeps their role: asking for a token above it is refused, because issuing a
token is not the place to raise someone's rights by accident. `--promote` raises the user to
the role first, on purpose.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Role, role_at_least
from accounts.services import api_token_create, user_ensure, user_role
from core.errors import ApplicationError


def _a(role: str) -> str:
    return f"an {role}" if role == Role.ADMIN else f"a {role}"


class Command(BaseCommand):
    help = "Issue an API token for a user (created if missing); prints the token as the last line."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True)
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--name", default="", help="what the token is for, e.g. 'slack-bot'")
        parser.add_argument(
            "--promote", action="store_true", help="raise an existing user to --role if their role is lower"
        )
        parser.add_argument("--namespaces", default="", help="comma-separated: the only namespaces it may touch")
        parser.add_argument("--clusters", default="", help="comma-separated: the only clusters it may touch")
        expiry = parser.add_mutually_exclusive_group()
        expiry.add_argument(
            "--expires-days", type=int, default=-1, help="days until it expires (default SCALEDECK_TOKEN_DEFAULT_DAYS)"
        )
        expiry.add_argument("--never-expires", action="store_true")
        parser.add_argument("--read-only", action="store_true", help="may read, never change anything")

    def handle(
        self,
        *args,
        user: str,
        role: str,
        name: str,
        promote: bool,
        namespaces: str,
        clusters: str,
        expires_days: int,
        never_expires: bool,
        read_only: bool,
        **options,
    ):
        try:
            existing = get_user_model().objects.filter(username=user).first()
            current = user_role(existing) if existing else None
            if existing is None:
                existing = user_ensure(username=user, role=role)
            elif not role_at_least(current, role):
                if not promote:
                    raise CommandError(
                        f"{user} has the {current or 'no'} role; {_a(role)} token would need more rights. "
                        f"Add --promote to make {user} {_a(role)} first."
                    )
                existing = user_ensure(username=user, role=role)
                self.stdout.write(f"{user} is now {role} (was {current or 'no role'}).")
            token, raw = api_token_create(
                user=existing,
                name=name or f"{user}-{role}",
                role=role,
                namespaces=namespaces.split(","),
                clusters=clusters.split(","),
                expires_days=None if never_expires else expires_days,
                read_only=read_only,
            )
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        scope = ", ".join(
            filter(
                None,
                [
                    f"clusters {', '.join(token.clusters)}" if token.clusters else "",
                    f"namespaces {', '.join(token.namespaces)}" if token.namespaces else "",
                    "read-only" if token.read_only else "",
                    f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "never expires",
                ],
            )
        )
        self.stdout.write(
            f"Token {token.prefix}… (id {token.pk}) for {user} (role {role}; {scope}). Shown once; store it now:"
        )
        self.stdout.write(raw)
