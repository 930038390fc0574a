"""Log lines: time, level, logger, message, and who and what they are about.

`SCALEDECK_LOG_FORMAT=json` writes one JSON object per line (python-json-logger) with
`time`, `level`, `logger`, `message`, and when there is one `request_id`, `user`, `token_name`,
`task`, `cluster_id`, `action_id`; the default text format carries the same context as
`key=value` after the message. Django, Celery and gunicorn (its access log too) all write
through these formatters.

No secret reaches a log line: whatever a message or traceback holds, the formatters replace
API tokens, bearer and basic credentials, passwords in URLs, Slack/Teams/Discord webhook paths
and Kubernetes service-account JWTs by `***` before the line is written.
"""

from __future__ import annotations

import contextvars
import logging
import re
from contextlib import contextmanager

from pythonjsonlogger.json import JsonFormatter

CONTEXT_KEYS = ("request_id", "user", "token_name", "task", "cluster_id", "action_id")
_context: contextvars.ContextVar[dict] = contextvars.ContextVar("scaledeck_log_context", default={})  # noqa: B039

SECRET_PATTERNS = [
    (re.compile(r"\bsdk_[A-Za-z0-9_\-]{8,}"), "sdk_***"),  # ScaleDeck API tokens
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}"), r"\1 ***"),
    (re.compile(r"(?i)([a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^@\s/]+@"), r"\1***@"),  # user:password@host
    (
        re.compile(
            r"(?i)(hooks\.slack\.com/services|webhook\.office\.com/webhookb2|discord(?:app)?\.com/api/webhooks)"
            r"/[^\s\"']+"
        ),
        r"\1/***",
    ),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]+"), "***jwt***"),  # k8s tokens
    (
        re.compile(
            r"(?i)((?:password|passwd|secret|token|api[_-]?key|client[_-]?key|private[_-]?key)"
            r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"
        ),
        r"\1***",
    ),
]


def redact(text: str) -> str:
    for pattern, replacement in SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def log_context() -> dict:
    return _context.get()


@contextmanager
def logging_about(**values):
    """Add context (request_id, user, cluster_id, action_id...) to every line logged inside."""
    merged = {**_context.get(), **{k: v for k, v in values.items() if v not in (None, "")}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def start_request(**values) -> None:
    """A fresh context for a new request (nothing carried over from the previous one)."""
    _context.set({k: v for k, v in values.items() if v not in (None, "")})


def end_request(**_signal_kwargs) -> None:
    """request_finished: the lines after this one are no longer about the request."""
    _context.set({})


def bind(**values) -> contextvars.Token:
    """Like `logging_about`, for code that cannot wrap a block (signal pairs): reset with `unbind`."""
    return _context.set({**_context.get(), **{k: v for k, v in values.items() if v not in (None, "")}})


def unbind(token: contextvars.Token) -> None:
    _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the current context onto each record (for the formatters)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        request = context.get("request")
        if request is not None:  # who: known once authentication has run (session or API token)
            context = {**context, **_who(request)}
        for key in CONTEXT_KEYS:
            if key in context and not hasattr(record, key):
                setattr(record, key, context[key])
        record.context = " ".join(f"{k}={context[k]}" for k in CONTEXT_KEYS if k in context)
        return True


def _who(request) -> dict:
    """The request's user and API token name, if authentication has already resolved them: a log
    line never triggers a session or token lookup of its own."""
    found = {}
    user = request.__dict__.get("user")
    user = getattr(user, "_wrapped", user)  # the session's lazy user, once evaluated
    if getattr(user, "is_authenticated", False) is True:
        found["user"] = user.get_username()
    token_name = getattr(request.__dict__.get("auth"), "name", None)
    if isinstance(token_name, str):
        found["token_name"] = token_name
    return found


class TextFormatter(logging.Formatter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("fmt", "%(asctime)s %(levelname)s %(name)s %(message)s")
        super().__init__(*args, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = getattr(record, "context", "")
        if context:
            first, sep, rest = line.partition("\n")
            line = f"{first} [{context}]{sep}{rest}"
        return redact(line)


class JsonLineFormatter(JsonFormatter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("fmt", "%(asctime)s %(levelname)s %(name)s %(message)s")
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        kwargs.setdefault(
            "reserved_attrs",
            [*logging.LogRecord("", 0, "", 0, "", (), None).__dict__, "context", "message", "asctime", "taskName"],
        )
        super().__init__(*args, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def logging_config(*, fmt: str = "text", level: str = "INFO") -> dict:
    """The LOGGING dict for settings (and gunicorn's logconfig_dict)."""
    if fmt not in ("text", "json"):
        raise ValueError(f"SCALEDECK_LOG_FORMAT must be text or json, not {fmt!r}")
    formatter = "ops.logs.JsonLineFormatter" if fmt == "json" else "ops.logs.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "ops.logs.ContextFilter"}},
        "formatters": {"scaledeck": {"()": formatter}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "scaledeck", "filters": ["context"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "kubernetes": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
            "gunicorn.error": {"handlers": ["console"], "level": level, "propagate": False},
            "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }
