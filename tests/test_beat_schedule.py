"""Every periodic job the beat sends names a task a worker knows (a typo would be dropped by the worker)."""

from __future__ import annotations

from django.conf import settings

from config.celery import app


def test_it_names_only_tasks_the_worker_registers():
    app.loader.import_default_modules()
    schedule = settings.CELERY_BEAT_SCHEDULE
    unknown = {name: entry["task"] for name, entry in schedule.items() if entry["task"] not in app.tasks}
    assert unknown == {}


def test_it_recovers_lost_repartitionings_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["recover-mig-applications"]
    assert entry["task"] == "mig.tasks.recover_mig_applications"
    assert entry["schedule"] == 60.0


def test_it_accrues_cost_on_its_own_schedule_not_in_the_sync():
    entry = settings.CELERY_BEAT_SCHEDULE["accrue-cluster-costs"]
    assert entry["task"] == "costing.tasks.accrue_all_clusters"
    assert entry["schedule"] <= 60.0  # under accrual's own minimum interval: the bill stays current
