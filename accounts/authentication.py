"""`Authorization: Bearer <token>` for the REST API, and nowhere else.

An expired or revoked token is refused with the reason in the body (a bot's author needs to know
whether to renew or to ask why), and the refusal is logged with the token's id and prefix only:
the secret never reaches a log line. A token in the query string is refused outright, because
query strings end up in proxy logs, browser history and Referer headers.
"""

from __future__ import annotations

import logging

from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts.models import TOKEN_PREFIX, ApiToken, hash_token

logger = logging.getLogger("scaledeck.auth")

# How often a token's last use is written: once a minute keeps the hot path read-only.
LAST_USED_EVERY_SECONDS = 60


def client_address(request) -> str | None:
    """The peer address. Behind a proxy this is the proxy, unless the server rewrites REMOTE_ADDR."""
    return request.META.get("REMOTE_ADDR") or None


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        if any(value.startswith(TOKEN_PREFIX) for values in request.query_params.lists() for value in values[1]):
            logger.warning("API token refused: sent in the query string (path %s)", request.path)
            raise exceptions.AuthenticationFailed(
                "API tokens are accepted only in the Authorization header (Bearer), never in the address."
            )
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0] != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        token = ApiToken.objects.select_related("user").filter(token_hash=hash_token(parts[1])).first()
        if token is None:
            logger.warning("API token refused: unknown token (path %s)", request.path)
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        now = timezone.now()
        refusal = token.refusal(now)
        if refusal:
            logger.warning("API token refused: token %s (%s…, %s): %s", token.pk, token.prefix, token.name, refusal)
            raise exceptions.AuthenticationFailed(refusal)
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_EVERY_SECONDS:
            ApiToken.objects.filter(id=token.id).update(last_used_at=now, last_used_ip=client_address(request))
        return token.user, token

    def authenticate_header(self, request):
        # Makes DRF answer 401 (not 403) to unauthenticated requests.
        return self.keyword
