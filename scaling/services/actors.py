"""Who acts: a person, a bot token, a pre-scale rule, or the expiry job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    """The acting party as the audit shows it (`label`) and as idempotency keys are scoped (`key`)."""

    label: str
    key: str
    user: Any = None
    token: Any = None

    @classmethod
    def of(cls, user, token=None) -> Actor:
        """A logged-in user, or the bot token a request authenticated with."""
        if token is not None:
            return cls(label=f"bot:{token.name}"[:120], key=f"token:{token.pk}", user=user, token=token)
        return cls(label=user.get_username()[:120], key=f"user:{user.pk}", user=user)

    @classmethod
    def of_request(cls, request) -> Actor:
        from accounts.models import ApiToken

        token = request.auth if isinstance(getattr(request, "auth", None), ApiToken) else None
        return cls.of(request.user, token)

    @classmethod
    def of_rule(cls, rule) -> Actor:
        return cls(label=f"rule:#{rule.pk}", key=f"rule:{rule.pk}")

    @classmethod
    def expiry(cls) -> Actor:
        return cls(label="expiry", key="expiry")

    def audit_fields(self) -> dict:
        """The ScaleAction fields that say who acted."""
        return {
            "actor_user": self.user if getattr(self.user, "pk", None) else None,
            "actor_token": self.token,
            "actor_label": self.label,
            "actor_key": self.key,
        }
