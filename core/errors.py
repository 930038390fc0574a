"""One error type for refusals a user can fix, mapped to API, form and command errors in one place each.

- the API: `core.api_errors.exception_handler` (REST_FRAMEWORK's EXCEPTION_HANDLER) answers 400/409
  with field errors (its own module: DRF's views import the settings that name it);
- forms: `form_error_add` shows the refusal next to the input at fault;
- management commands catch it and exit with its message on one line.
"""

from __future__ import annotations

from django import forms


class ApplicationError(Exception):
    """A request was refused. `field` names the input at fault; `status` the HTTP answer (400 or 409).

    Raised by services; the API turns it into `{"detail": ..., "field": [...]}`, forms into an
    inline error, management commands into a one-line non-zero exit.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status: int = 400,
        extra: dict | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status
        self.extra = extra or {}
        # Names the refusal for front doors that word it their own way: the message speaks the API's
        # words ("ask again with raise_max"), a page says "tick 'raise the max too'" (scaling.forms).
        self.code = code


def form_error_add(
    form: forms.Form, error: ApplicationError, *, field_map: dict[str, str] | None = None, message: str | None = None
) -> None:
    """Show a service's refusal next to the form's input at fault, or above the form when no input is.

    `field_map` renames the service's field to the form's (`{"max_replicas": "raise_max"}`);
    `message` replaces the service's words with the page's own."""
    name = (field_map or {}).get(error.field or "", error.field)
    form.add_error(name if name in form.fields else None, error.message if message is None else message)
