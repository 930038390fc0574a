"""The Celery app (`celery -A config worker`, `celery -A config beat`).

A worker that cannot wedge
--------------------------
`python -m celery -A config worker` must resume by itself after any of its processes is killed
(the OOM killer picks one): either it keeps processing, or it exits so that its supervisor
(Kubernetes, `make demo`'s runner) starts it again. Celery's default pool, prefork, does not
promise that: its pool children share locks (semaphores) with the main process and with each
other, and a child SIGKILLed while holding one leaves the others blocked on it for ever, the main
process alive and consuming, nothing processed. Measured with `bench/worker_recovery.py` (a pool
child killed while tasks run): on the file broker 5 of 13 kills left prefork wedged (every child
in futex_wait, nothing done for over a minute); on Redis it was back within a second in 16 of 16,
because that window is rarer there, not closed. Threads, killed and restarted: processing again
after 4 to 6 s on either broker.

So the default pool is threads: one process, no pool children, no lock shared with a process that
can die alone. Killed, the whole worker is gone and its supervisor restarts it in a few seconds;
the actions it held are recovered at start (`scaling.tasks.recover_lost_actions`, and the write
protocol in `scaling/services/execution.py`). Tasks here wait on the network and the database,
which threads share well. What threads cannot do is enforce Celery's time limits: every task
bounds its own waits instead (the Kubernetes client's and Prometheus's request timeouts), and a
long computation must check its own deadline.

`SCALEDECK_WORKER_POOL` and `SCALEDECK_WORKER_CONCURRENCY` change the defaults; `--pool` and
`--concurrency` on the command line still win (an explicit `--pool prefork` does not: Celery reads
that spelling as "the default", and this app's default is threads; use `SCALEDECK_WORKER_POOL`).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("scaledeck")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.worker_pool = os.environ.get("SCALEDECK_WORKER_POOL", "threads")
app.conf.worker_concurrency = int(os.environ.get("SCALEDECK_WORKER_CONCURRENCY", "4"))
app.autodiscover_tasks()
