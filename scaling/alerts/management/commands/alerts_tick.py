"""`manage.py alerts_tick`: one evaluation pass, then one attempt of every new or due delivery,
waited for (each bounded by the webhook timeout, side by side). The beat runs the same pass."""

from django.core.management.base import BaseCommand
from django.utils import timezone

from scaling.alerts.delivery import deliveries_attempt_now, deliveries_due
from scaling.alerts.evaluation import alerts_evaluate


class Command(BaseCommand):
    help = "Evaluate SLO burn and threshold alerts once and send their notifications."

    def handle(self, *args, **options):
        result = alerts_evaluate()
        due = sorted(set(result.deliveries) | set(deliveries_due(now=timezone.now())))
        outcomes = deliveries_attempt_now(due)
        sent = sum(o.status == "sent" for o in outcomes)
        later = sum(o.status == "retry" for o in outcomes)
        failed = sum(o.status == "failed" for o in outcomes)
        self.stdout.write(
            f"{len(result.opened)} alerts opened, {len(result.resolved)} resolved; "
            f"{sent} notifications sent, {later} to retry, {failed} given up"
        )
        for name in result.unknown_clusters:
            self.stdout.write(f"cluster {name}: alert state unknown (metrics unavailable)")
