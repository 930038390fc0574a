"""Beat's scheduler with a heartbeat: `celery -A config beat --scheduler ops.beat:HeartbeatScheduler`.

Beat serves nothing a probe could ask, and its schedule file is written only every few
minutes; this touches `beat.heartbeat` on every tick (at least every 15 s with ScaleDeck's
schedule), so a beat that hangs fails its liveness probe (`python -m ops.heartbeat beat`).
"""

from __future__ import annotations

from celery.beat import PersistentScheduler

from ops import heartbeat


class HeartbeatScheduler(PersistentScheduler):
    def tick(self, *args, **kwargs):
        heartbeat.touch("beat")
        return super().tick(*args, **kwargs)
