"""`POST /chatops/slack/`: Slack's slash command, for teams without a bot.

No login and no CSRF token: Slack cannot send either. That is safe only because every request is
checked against Slack's signature first (chatops/slack.py) and acts as the ScaleDeck user its
Slack user id is linked to (SlackUserLink), with that user's role.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from chatops import answers, slack
from chatops.models import SlackUserLink

logger = logging.getLogger("scaledeck.chatops")


def _ephemeral(text: str, status: int = 200) -> JsonResponse:
    return JsonResponse({"response_type": "ephemeral", "text": text}, status=status)


@csrf_exempt  # the Slack signature below is this endpoint's authentication
@require_POST
def slack_command(request: HttpRequest) -> JsonResponse:
    body = request.body  # the raw bytes, as signed; read before anything parses the form
    signature = request.headers.get("X-Slack-Signature")
    problem = slack.signature_problem(
        secret=settings.SCALEDECK_SLACK_SIGNING_SECRET,
        timestamp=request.headers.get("X-Slack-Request-Timestamp"),
        signature=signature,
        body=body,
        now=time.time(),
    )
    if problem:
        logger.warning("Slack command refused: %s", problem)
        return JsonResponse({"detail": problem}, status=401)
    if not slack.first_use(signature):
        logger.warning("Slack command refused: a replayed signature")
        return JsonResponse({"detail": "This request was already received."}, status=401)
    link = SlackUserLink.objects.select_related("user").filter(slack_user_id=request.POST.get("user_id", "")).first()
    if link is None or not link.user.is_active:
        return _ephemeral("Your Slack account is not linked to a ScaleDeck user; ask a ScaleDeck admin.")
    return _ephemeral(answers.answer(user=link.user, text=request.POST.get("text", ""), now=timezone.now()))
