"""One error type for refusals a user can fix, mapped to API, form and command errors in one place each."""

from __future__ import annotations


class ApplicationError(Exception):
    """A request was refused. `field` names the input at fault; `status` the HTTP answer (400 or 409).

    Raised by services; the API turns it into `{"detail": ..., "field": [...]}`, forms into an
    inline error, management commands into a one-line non-zero exit.
    """

    def __init__(self, message: str, *, field: str | None = None, status: int = 400, extra: dict | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status
        self.extra = extra or {}
        # Names the refusal for front doors that word it their own way: the message speaks the API's
        # words ("ask again with raise_max"), a page says "tick 'raise the max too'" (scaling.forms).
        self.code = code
