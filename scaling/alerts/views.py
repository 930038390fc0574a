"""Pages: the alerts list (with each cluster's evaluation state), one alert (acknowledge,
silence), and receivers (admins). The same services as the API."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.decorators import role_required
from accounts.models import Role, role_at_least
from accounts.services import user_role
from core.errors import ApplicationError
from core.htmx import filtered_rows, render_filtered
from scaling.alerts.filters import AlertFilterSet, ReceiverFilterSet
from scaling.alerts.models import Alert, ClusterEvaluation, Delivery, Receiver, SloTarget
from scaling.alerts.receivers import receiver_create, receiver_delete
from scaling.alerts.rules import RULE_TITLES, Severity
from scaling.alerts.services import alert_acknowledge, alert_silence
from scaling.services.actors import Actor

PAGE_SIZE = 50


@require_GET
def alerts(request):
    """Alerts filtered like `GET /api/v1/alerts/`; firing ones unless `?state=` says otherwise
    (`?state=all` for every state)."""
    params = request.GET.copy()
    if "state" not in params:
        params["state"] = Alert.State.FIRING
    if params.getlist("state") == ["all"]:
        del params["state"]
    states = params.getlist("state")
    filterset = AlertFilterSet(params, queryset=Alert.objects.select_related("deployment", "cluster"))
    rows, errors = filtered_rows(filterset)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filterset": filterset,
        "filter_errors": errors,
        "page": page,
        "query": query.urlencode(),
        "state": states[0] if len(states) == 1 else "all",
        "states": Alert.State.choices,
        "severities": Severity.choices,
        "titles": RULE_TITLES,
        "evaluations": ClusterEvaluation.objects.select_related("cluster").order_by("cluster__name"),
        "budgets": SloTarget.objects.filter(budget_remaining__isnull=False, deployment__gone_at__isnull=True)
        .select_related("deployment", "deployment__cluster")
        .order_by("budget_remaining")[:20],
        "can_operate": role_at_least(user_role(request.user), Role.OPERATOR),
        "section": "alerts:alerts",
    }
    return render_filtered(request, "alerts/alerts.html", context)


@require_GET
def alert_detail(request, alert_id: int):
    alert = get_object_or_404(Alert.objects.select_related("deployment", "cluster"), id=alert_id)
    context = {
        "alert": alert,
        "title": RULE_TITLES.get(alert.rule, alert.rule),
        "notes": alert.notes.all(),
        "deliveries": alert_deliveries(alert),
        "can_operate": role_at_least(user_role(request.user), Role.OPERATOR),
        "section": "alerts:alerts",
    }
    return render(request, "alerts/alert.html", context)


def alert_deliveries(alert: Alert):
    return Delivery.objects.filter(dedup_key__startswith=f"alert:{alert.id}:").select_related("receiver")


@require_POST
@role_required(Role.OPERATOR)
def alert_act(request, alert_id: int):
    alert = get_object_or_404(Alert, id=alert_id)
    actor = Actor.of_request(request)
    try:
        if request.POST.get("do") == "silence":
            try:
                minutes = int(request.POST.get("minutes", ""))
            except ValueError:
                raise ApplicationError("enter the silence's length in whole minutes", field="minutes") from None
            alert_silence(alert=alert, actor=actor, minutes=minutes, reason=request.POST.get("reason", ""))
            messages.success(request, f"Silenced for {minutes} min.")
        else:
            alert_acknowledge(alert=alert, actor=actor, reason=request.POST.get("reason", ""))
            messages.success(request, "Acknowledged.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("alerts:alert", alert_id=alert.id)


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def receivers(request):
    error = None
    if request.method == "POST":
        if request.POST.get("delete"):
            receiver_delete(
                receiver=get_object_or_404(Receiver, id=request.POST["delete"]), actor=Actor.of_request(request)
            )
            return redirect("alerts:receivers")
        data = {
            "name": request.POST.get("name", ""), "kind": request.POST.get("kind", ""),
            "url": request.POST.get("url", ""), "severities": request.POST.getlist("severities"),
            "namespaces": [n.strip() for n in request.POST.get("namespaces", "").split(",") if n.strip()],
            "events": request.POST.getlist("events"),
        }  # fmt: skip
        try:
            receiver_create(data=data, actor=Actor.of_request(request))
            messages.success(request, f"Receiver {data['name']} added.")
            return redirect("alerts:receivers")
        except ApplicationError as exc:
            error = exc.message
    filterset = ReceiverFilterSet(request.GET, queryset=Receiver.objects.all())
    rows, errors = filtered_rows(filterset)
    context = {
        "receivers": rows,
        "filterset": filterset,
        "filter_errors": errors,
        "kinds": Receiver.Kind.choices,
        "severities": Severity.choices,
        "events": Receiver.Event.choices,
        "error": error,
        "section": "alerts:receivers",
    }
    return render_filtered(request, "alerts/receivers.html", context, status=400 if error else 200)
