"""Pages: API tokens (admins issue and revoke, everyone sees their own)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.decorators import forbidden, role_required
from accounts.filters import ApiTokenFilterSet
from accounts.forms import TokenForm
from accounts.models import ApiToken, Role
from accounts.services import api_token_create, api_token_revoke, user_role
from core.errors import ApplicationError, form_error_add
from core.htmx import filtered_rows, render_filtered


def _names(text: str) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


@require_http_methods(["GET", "POST"])
def tokens(request):
    """The token list; admins also get the form to issue one, and the secret once after issuing it."""
    is_admin = user_role(request.user) == Role.ADMIN
    if request.method == "POST" and not is_admin:
        return forbidden(request, role_needed=Role.ADMIN)
    form = TokenForm(request.POST if request.method == "POST" else None) if is_admin else None
    issued = None
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            token, raw = api_token_create(
                user=d["user"],
                name=d["name"],
                role=d["role"],
                namespaces=_names(d["namespaces"]),
                clusters=_names(d["clusters"]),
                read_only=d["read_only"],
                actor=request.user,
                expires_days=None if d["never_expires"] else (d["expires_days"] or -1),
            )
            issued = {"token": token, "raw": raw}
            form = TokenForm()
        except ApplicationError as error:
            form_error_add(form, error)
    rows = ApiToken.objects.select_related("user").order_by("-created_at", "-id")
    if not is_admin:
        rows = rows.filter(user=request.user)
    filterset = ApiTokenFilterSet(request.GET, queryset=rows)
    rows, errors = filtered_rows(filterset)
    status = 400 if form is not None and form.errors else 200
    context = {"rows": rows[:500], "form": form, "issued": issued, "is_admin": is_admin, "now": timezone.now(),
               "filterset": filterset, "filter_errors": errors, "roles": Role.choices}  # fmt: skip
    return render_filtered(request, "accounts/tokens.html", context, status=status)


@role_required(Role.ADMIN)
@require_POST
def token_revoke(request, token_id: int):
    token = get_object_or_404(ApiToken, id=token_id)
    reason = request.POST.get("reason", "")[:500]
    if api_token_revoke(token=token, actor=request.user, reason=reason):
        messages.success(request, f"Token {token.prefix}… ({token.name}) revoked: it is refused from now on.")
    else:
        messages.info(request, f"Token {token.prefix}… was already revoked.")
    return redirect("accounts:tokens")
