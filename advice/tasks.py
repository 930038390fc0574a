"""The advisor's worker task: one search per run row (advice/services.py)."""

from __future__ import annotations

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from advice import services

SOFT_TIME_LIMIT_SECONDS = 600  # 7 days x ~80 candidates on two loaded cores takes minutes
TIME_LIMIT_SECONDS = 660


@shared_task(
    ignore_result=True, acks_late=False, soft_time_limit=SOFT_TIME_LIMIT_SECONDS, time_limit=TIME_LIMIT_SECONDS
)
def advice_run(run_id: int) -> str:
    """Never retried: a search that killed its worker must not kill the next one."""
    try:
        run = services.advice_execute(run_id=run_id)
    except SoftTimeLimitExceeded:
        services.advice_fail(run_id=run_id, error=f"took longer than {SOFT_TIME_LIMIT_SECONDS} s: try fewer hours")
        return f"advice {run_id}: timed out"
    except Exception:
        services.advice_fail(run_id=run_id, error="the search failed; the worker log has the details")
        raise
    return f"advice {run_id}: {run.status if run else 'not run'}"
