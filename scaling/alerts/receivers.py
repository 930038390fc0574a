"""Receivers: create, change, delete (each in the one audit, accounts/audit.py); the URL secret
(encrypted at rest or read from a file).

The key is derived from SECRET_KEY (SHA-256 -> a Fernet key), so rotating SECRET_KEY makes
stored URLs unreadable: deliveries then fail with "the receiver's URL cannot be decrypted" and
an admin enters the URL again. A URL read from a file (`url_file`, under the secret folders)
is never stored at all.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.audit import audit_record
from accounts.models import AuditKind
from core.errors import ApplicationError
from fleet.secret_files import secret_path_error
from scaling.alerts.models import Receiver
from scaling.alerts.rules import Severity

MAX_URL_LENGTH = 2000


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"scaledeck receiver url\x00" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def url_problem(url: str) -> str | None:
    """Why `url` cannot receive notifications; None when it can."""
    if not isinstance(url, str) or not url:
        return "a receiver needs a URL"
    if len(url) > MAX_URL_LENGTH:
        return f"a receiver URL can be at most {MAX_URL_LENGTH} characters"
    if any(ord(c) < 33 for c in url):
        return "a receiver URL cannot contain spaces or control characters"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "a receiver URL must start with http:// or https://"
    if not parts.hostname:
        return "a receiver URL needs a host"
    return None


def url_hint(url: str) -> str:
    """What may be shown of a URL: its scheme and host, the rest masked."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/…"


def receiver_url(receiver: Receiver) -> str:
    """The URL to send to. Raises ApplicationError when it cannot be read (never shows it)."""
    if receiver.url_file:
        error = secret_path_error(receiver.url_file, what="the receiver URL file")
        if error:
            raise ApplicationError(error)
        try:
            with open(receiver.url_file, encoding="utf-8") as handle:
                url = handle.read().strip()
        except OSError as exc:
            raise ApplicationError(f"the receiver URL file cannot be read ({exc.strerror})") from exc
    else:
        try:
            url = _fernet().decrypt(receiver.url_encrypted.encode()).decode()
        except (InvalidToken, ValueError) as exc:
            raise ApplicationError(
                "the receiver's URL cannot be decrypted (SECRET_KEY changed?); enter it again"
            ) from exc
    problem = url_problem(url)
    if problem:
        raise ApplicationError(problem)
    return url


def _choices(values: Iterable, allowed: Iterable[str], *, field: str, what: str) -> list[str]:
    values = list(values)
    allowed = list(allowed)
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ApplicationError(f"unknown {what}: {', '.join(map(str, bad))} (one of {', '.join(allowed)})", field=field)
    return sorted(set(values), key=allowed.index)


def _namespaces(values: Iterable) -> list[str]:
    out = []
    for value in values:
        if not isinstance(value, str) or not value or len(value) > 63:
            raise ApplicationError("a namespace is 1 to 63 characters", field="namespaces")
        if any(ord(c) < 32 or c.isspace() for c in value):
            raise ApplicationError("a namespace cannot contain spaces or control characters", field="namespaces")
        out.append(value)
    return sorted(set(out))


def _apply(receiver: Receiver, changes: dict) -> None:
    if "name" in changes:
        name = changes["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise ApplicationError("a receiver name is 1 to 100 characters", field="name")
        receiver.name = name.strip()
    if "kind" in changes:
        receiver.kind = _choices([changes["kind"]], Receiver.Kind.values, field="kind", what="kind")[0]
    if "severities" in changes:
        receiver.severities = _choices(changes["severities"], Severity.values, field="severities", what="severity")
    if "namespaces" in changes:
        receiver.namespaces = _namespaces(changes["namespaces"])
    if "events" in changes:
        receiver.events = _choices(changes["events"], Receiver.Event.values, field="events", what="event")
    if "url_file" in changes and changes["url_file"]:
        error = secret_path_error(changes["url_file"], what="the receiver URL file")
        if error:
            raise ApplicationError(error, field="url_file")
        receiver.url_file, receiver.url_encrypted, receiver.url_hint = changes["url_file"], "", "(read from a file)"
    if "url" in changes:
        problem = url_problem(changes["url"])
        if problem:
            raise ApplicationError(problem, field="url")
        receiver.url_encrypted = _fernet().encrypt(changes["url"].encode()).decode()
        receiver.url_hint, receiver.url_file = url_hint(changes["url"]), ""
    if not receiver.url_encrypted and not receiver.url_file:
        raise ApplicationError("a receiver needs a URL", field="url")


def receiver_audit_fields(receiver: Receiver) -> dict:
    """What the audit shows of a receiver: its settings, with the URL reduced to its scheme and host."""
    return {"name": receiver.name, "kind": receiver.kind, "url": receiver.url_hint,
            "severities": list(receiver.severities), "namespaces": list(receiver.namespaces),
            "events": list(receiver.events)}  # fmt: skip


def _save(receiver: Receiver, *, actor, before: dict | None) -> Receiver:
    """Save and audit in one transaction: the row and its audit entry land together or not at all."""
    try:
        with transaction.atomic():
            receiver.save()
            audit_record(actor=actor, kind=AuditKind.RECEIVER, object=f"receiver {receiver.name}",
                         object_id=receiver.pk, before=before, after=receiver_audit_fields(receiver))  # fmt: skip
    except IntegrityError as exc:
        raise ApplicationError(f"a receiver named {receiver.name} exists already", field="name") from exc
    return receiver


def receiver_create(*, data: dict, actor) -> Receiver:
    """Validate everything, then save; a refusal changes nothing. `actor` is who the audit names."""
    receiver = Receiver(events=[Receiver.Event.ALERTS])
    if "kind" not in data:
        raise ApplicationError("choose a kind: slack or webhook", field="kind")
    if "name" not in data:
        raise ApplicationError("a receiver needs a name", field="name")
    _apply(receiver, data)
    return _save(receiver, actor=actor, before=None)


def receiver_update(*, receiver: Receiver, data: dict, actor) -> Receiver:
    fresh = Receiver.objects.get(pk=receiver.pk)
    before = receiver_audit_fields(fresh)
    _apply(fresh, data)
    return _save(fresh, actor=actor, before=before)


def receiver_delete(*, receiver: Receiver, actor) -> None:
    with transaction.atomic():
        audit_record(actor=actor, kind=AuditKind.RECEIVER, object=f"receiver {receiver.name}",
                     object_id=receiver.pk, before=receiver_audit_fields(receiver), after=None)  # fmt: skip
        receiver.delete()


def receivers_for(receivers: Iterable[Receiver], *, event: str, severity: str | None, namespace: str | None
                  ) -> list[Receiver]:  # fmt: skip
    """The receivers that opted in to this event, severity and namespace (empty lists: all).
    A node's alert has no namespace: only receivers of every namespace get it."""
    chosen = []
    for r in receivers:
        if event not in r.events:
            continue
        if severity is not None and r.severities and severity not in r.severities:
            continue
        if r.namespaces and namespace not in r.namespaces:
            continue
        chosen.append(r)
    return chosen
