"""`POST /chatops/slack/`: Slack's slash command, for teams without a bot.

No login and no CSRF token: Slack cannot send either. That is safe only because every request is
checked against Slack's signature first (chatops/slack.py) and acts as the ScaleDeck user its
Slack user id is linked to (SlackUserLink), with that user's role.
"""

from __future__ import annotations

import functools
import json
import logging
import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.scope import SCOPE_REFUSED, scope_allows
from chatops import answers, scale, slack
from chatops.models import SlackUserLink
from chatops.tasks import slack_answer_post, slack_scale_apply
from fleet.models import ModelDeployment

logger = logging.getLogger("scaledeck.chatops")


def _ephemeral(text: str, status: int = 200) -> JsonResponse:
    return JsonResponse({"response_type": "ephemeral", "text": text}, status=status)


def _verified(request: HttpRequest) -> JsonResponse | None:
    """None for a request Slack signed now and for the first time; else the 401 to answer."""
    signature = request.headers.get("X-Slack-Signature")
    problem = slack.signature_problem(
        secret=settings.SCALEDECK_SLACK_SIGNING_SECRET,
        timestamp=request.headers.get("X-Slack-Request-Timestamp"),
        signature=signature,
        body=request.body,  # the raw bytes, as signed; read before anything parses the form
        now=time.time(),
    )
    if problem:
        logger.warning("Slack request refused: %s", problem)
        return JsonResponse({"detail": problem}, status=401)
    if not slack.first_use(signature):
        logger.warning("Slack request refused: a replayed signature")
        return JsonResponse({"detail": "This request was already received."}, status=401)
    return None


def _link(slack_user_id: str) -> SlackUserLink | None:
    """The Slack user's link to an active ScaleDeck user, or None."""
    link = SlackUserLink.objects.select_related("user").filter(slack_user_id=slack_user_id).first()
    return link if link is not None and link.user.is_active else None


NOT_LINKED = "Your Slack account is not linked to a ScaleDeck user; ask a ScaleDeck admin."


def _response_url_allowed(url: str) -> bool:
    """Only Slack's own hooks: the worker POSTs there, so anything else would be a request forger's relay."""
    return url.startswith(settings.SCALEDECK_SLACK_RESPONSE_URL_PREFIX)


def slack_signed(view):
    """POST only, no CSRF token, no sign-in, and answered only when Slack signed it now and for the first time."""

    @login_not_required  # the Slack signature is these endpoints' authentication...
    @csrf_exempt  # ...so neither a session nor its CSRF token
    @require_POST
    @functools.wraps(view)
    def checked(request: HttpRequest) -> JsonResponse:
        refused = _verified(request)
        return refused if refused is not None else view(request)

    return checked


def _answer_later(*, link: SlackUserLink, text: str, response_url: str) -> JsonResponse:
    """Prometheus is slow: say so now, and post the answer from the worker when it has one."""
    budget = f"{answers.ANSWER_BUDGET_SECONDS:g} s"
    if not _response_url_allowed(response_url):
        return _ephemeral(f"Prometheus did not answer within {budget}; ask again in a minute.")
    transaction.on_commit(lambda: slack_answer_post.delay(link_id=link.id, text=text, response_url=response_url))
    return _ephemeral(
        f"Prometheus did not answer within {budget}: the answer follows here when it does (or when it times out)."
    )


@slack_signed
def slack_command(request: HttpRequest) -> JsonResponse:
    started = time.monotonic()
    link = _link(request.POST.get("user_id", ""))
    if link is None:
        return _ephemeral(NOT_LINKED)
    words = scale.split_words(request.POST.get("text", ""))
    if words and words[0].lower() == "scale":
        if not scale.may_scale(link.user):
            return _ephemeral("Your ScaleDeck role may not scale; an operator can.")
        command, problem = scale.parse(words[1:], functools.partial(answers.find_deployment, scope=link))
        if command is None:
            return _ephemeral(problem)
        return JsonResponse(scale.dry_run_message(user=link.user, command=command))
    text = request.POST.get("text", "")
    within = answers.ANSWER_BUDGET_SECONDS - (time.monotonic() - started)
    reply = answers.answer(link=link, text=text, now=timezone.now(), within=within)
    if reply is None:
        return _answer_later(link=link, text=text, response_url=request.POST.get("response_url", ""))
    return _ephemeral(reply)


@slack_signed
def slack_interaction(request: HttpRequest) -> JsonResponse:
    """Slack's interactivity request for the Confirm and Cancel buttons of a scale dry run."""
    try:
        payload = json.loads(request.POST.get("payload", ""))
        pressed = payload["actions"][0]
        slack_user, response_url = payload["user"]["id"], payload.get("response_url", "")
    except (ValueError, KeyError, IndexError, TypeError):
        return JsonResponse({"detail": "Not a Slack interaction payload."}, status=400)
    link = _link(slack_user)
    if link is None:
        return _ephemeral(NOT_LINKED)
    if pressed.get("action_id") == "scale_cancel":
        return JsonResponse({"replace_original": True, "text": "Cancelled; nothing was changed."})
    if pressed.get("action_id") != "scale_confirm":
        return JsonResponse({"detail": "Unknown action."}, status=400)
    if not scale.may_scale(link.user):  # the role is checked again: it may have changed since the dry run
        return _ephemeral("Your ScaleDeck role may not scale; an operator can.")
    try:
        value = json.loads(pressed["value"])
        deployment = ModelDeployment.objects.get(pk=int(value["deployment"]))
        replicas, ttl = int(value["replicas"]), value["ttl_minutes"]
        reason = str(value["reason"])[:500]
    except (ValueError, KeyError, TypeError, ModelDeployment.DoesNotExist):
        return JsonResponse({"detail": "The button no longer names a deployment."}, status=400)
    if not scope_allows(link, deployment):  # the scope too: it may have narrowed since the dry run
        return _ephemeral(SCOPE_REFUSED)
    if not _response_url_allowed(response_url):
        return JsonResponse({"detail": "The response URL is not Slack's."}, status=400)
    key = "slack:" + request.headers["X-Slack-Signature"][-40:]  # one apply per button press
    transaction.on_commit(
        lambda: slack_scale_apply.delay(
            link_id=link.id,
            deployment_id=deployment.id,
            replicas=replicas,
            ttl_minutes=None if ttl is None else int(ttl),
            reason=reason,
            response_url=response_url,
            idempotency_key=key,
        )
    )
    return JsonResponse(
        {
            "replace_original": True,
            "text": f"Scaling {deployment.namespace}/{deployment.name} to at least {replicas} replicas: "
            "sent to the worker; the result follows here.",
        }
    )
