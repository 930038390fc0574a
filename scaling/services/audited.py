"""What every audited request shares (a scale in `actions.py`, a quota change in `quotas.py`).

Each request is one `ScaleAction` row, whatever becomes of it:
- its body is stored as asked (`json_safe`), and is what an Idempotency-Key is checked against;
- the same actor sending the same Idempotency-Key again gets the first action back
  (`action.replayed` is True), or its refusal again; a different body under that key is a 409
  (`earlier_action`, `replay`); two such requests racing each other get the one row the unique
  constraint let in (`replay_race`);
- a refusal is stored `rejected`, with its reason, before the error goes back to the caller
  (`audit_refusal`): nothing is written to the cluster, and the audit shows the attempt.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from core.errors import ApplicationError
from scaling.models import ScaleAction
from scaling.services.actors import Actor

MAX_KEY_LENGTH = ScaleAction._meta.get_field("idempotency_key").max_length


def idempotency_key(raw: str | None) -> str:
    """The key as stored ("" for none); ApplicationError (400) when it is too long to store."""
    key = (raw or "").strip()
    if len(key) > MAX_KEY_LENGTH:
        raise ApplicationError(f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters", field="idempotency_key")
    return key


def earlier_action(actor: Actor, key: str) -> ScaleAction | None:
    """The action this actor's earlier request with `key` made; None for no key or a new one."""
    if not key:
        return None
    return ScaleAction.objects.filter(actor_key=actor.key, idempotency_key=key).first()


def replay(existing: ScaleAction, request: dict) -> ScaleAction:
    """The earlier action as the answer to the same request again: the action itself (`replayed`
    True), or its refusal raised again. Another body under the same key is a 409."""
    if existing.request != request:
        raise ApplicationError(
            f"this Idempotency-Key was already used for a different request (action #{existing.pk})",
            status=409,
            extra={"action_id": existing.pk},
        )
    if existing.status == ScaleAction.Status.REJECTED:
        raise ApplicationError(existing.error, status=409, extra={"action_id": existing.pk, "replayed": True})
    existing.replayed = True
    return existing


def replay_race(error: IntegrityError, *, actor: Actor, key: str, request: dict) -> ScaleAction:
    """After `error` inserting the action: a rival request with the same key got in first, and its
    action is the answer. Any other integrity error is raised again."""
    existing = earlier_action(actor, key)
    if existing is None:
        raise error
    return replay(existing, request)


def audit_refusal(*, base: dict, error: ApplicationError, now: datetime) -> ApplicationError:
    """Store the refused attempt as a `rejected` action (fields `base`) and return the error to
    raise, naming that action. Nothing is written to the cluster."""
    try:
        with transaction.atomic():
            action = ScaleAction.objects.create(
                **base, status=ScaleAction.Status.REJECTED, error=error.message[:500], finished_at=now
            )
    except IntegrityError:
        # The same Idempotency-Key raced us; the first row is the answer.
        return error
    error.extra = {**error.extra, "action_id": action.pk}
    return error


def json_safe(value):
    """A request body as JSON stores it: dict keys as text, tuples as lists, anything else as text."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
