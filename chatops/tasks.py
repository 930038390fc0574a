"""What Slack's 3 seconds cannot wait for, done in the worker and posted to the command's response_url:
the apply of a confirmed scale (Kubernetes answers later), and a status the metrics of which
Prometheus did not give in time (chatops/answers.py)."""

from __future__ import annotations

import json
import logging
import time
import urllib.request

from celery import shared_task
from django.utils import timezone

from accounts.scope import SCOPE_REFUSED, scope_allows
from chatops import answers
from chatops.models import SlackUserLink
from core.errors import ApplicationError
from fleet.models import ModelDeployment
from scaling.models import ScaleAction
from scaling.services.actions import scale_action_request
from scaling.services.actors import Actor
from scaling.services.execution import TargetBusy, TransientActionError, scale_action_execute

logger = logging.getLogger("scaledeck.chatops")
POST_TIMEOUT_SECONDS = 10
WAIT_FOR_OTHER_WORKER_SECONDS = 30  # another worker claimed the action: how long to wait for its answer


def post_to_slack(response_url: str, text: str, *, replace_original: bool = True) -> None:
    """One message to the command's response_url (Slack's hooks.slack.com URL, valid 30 minutes)."""
    body = json.dumps({"response_type": "ephemeral", "replace_original": replace_original, "text": text}).encode()
    request = urllib.request.Request(  # noqa: S310 - an https Slack URL, checked by the view
        response_url, data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=POST_TIMEOUT_SECONDS) as answer:  # noqa: S310 - Slack's URL
        answer.read()


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def slack_scale_apply(
    *,
    link_id: int,
    deployment_id: int,
    replicas: int,
    ttl_minutes: int | None,
    reason: str,
    response_url: str,
    idempotency_key: str,
) -> None:
    link = SlackUserLink.objects.select_related("user").get(pk=link_id)
    deployment = ModelDeployment.objects.select_related("cluster").get(pk=deployment_id)
    try:
        if not scope_allows(link, deployment):
            raise ApplicationError(SCOPE_REFUSED, status=403)
        action = scale_action_request(
            deployment=deployment,
            replicas=replicas,
            reason=reason,
            actor=Actor.of(link.user),
            source=ScaleAction.Source.API,
            ttl_minutes=ttl_minutes,
            idempotency_key=idempotency_key,
        )
    except ApplicationError as exc:
        text = f"Refused: {exc.message}"
    else:
        action = _finished(action)
        text = (
            f"Scale request #{action.id} for {deployment.namespace}/{deployment.name} to {replicas} replicas: "
            f"{action.get_status_display()}{'. ' + action.error if action.error else ''}."
        )
    try:
        post_to_slack(response_url, text)
    except OSError as exc:  # the action stands either way; Slack only misses the message
        logger.warning("Slack response_url unreachable for a scale result: %s", exc)


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def slack_answer_post(*, link_id: int, text: str, response_url: str) -> None:
    """A `status` or `why` answer, once every cluster's Prometheus has answered or timed out."""
    link = SlackUserLink.objects.select_related("user").get(pk=link_id)
    reply = answers.answer(link=link, text=text, now=timezone.now())
    try:
        post_to_slack(response_url, reply, replace_original=False)
    except OSError as exc:
        logger.warning("Slack response_url unreachable for a status answer: %s", exc)


def _finished(action: ScaleAction) -> ScaleAction:
    """The action once Kubernetes has answered, so Slack hears the outcome, not "pending".

    It is applied here, through the same claim as the dispatched execution: whichever claims it
    first applies it and the other walks away; if that was another worker, wait for its answer."""
    try:
        scale_action_execute(action_id=action.id)
    except (TargetBusy, TransientActionError) as exc:  # still pending: the reconciler retries it
        logger.info("Slack scale request #%s left to the reconciler: %s", action.id, exc)
    deadline = time.monotonic() + WAIT_FOR_OTHER_WORKER_SECONDS
    action.refresh_from_db()
    while action.status == ScaleAction.Status.RUNNING and time.monotonic() < deadline:
        time.sleep(1)
        action.refresh_from_db()
    return action
