"""One informer: list a kind once, then watch it from the list's resourceVersion.

A thread per (kind, namespace) that puts what it learns on its watcher's queue:
`("replace", kind, namespace, items)` after a list, `("event", kind, type, object)` for each
change, `("missing", kind, namespace)` when the API server does not serve the kind.

When it lists again, and why only then (a list of a big cluster is what loads an API server):
- 410 Gone, on the watch request or as an ERROR event: the history behind our resourceVersion
  was compacted, so resuming cannot be exact;
- the safety resync (`resync_seconds`, 30 minutes by default), against a missed event;
- a kind the API server did not serve (a CRD not installed) is looked for again at that pace.
A watch the server ends (its timeout) is resumed at once from the last resourceVersion seen,
bookmarks included; a broken connection or a failing API server is resumed the same way after
a backoff (1 s doubling to 30 s), without a list.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from fleet.backends.base import BackendError
from fleet.backends.kubernetes.watch import WatchGone

logger = logging.getLogger(__name__)

BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0


class Informer(threading.Thread):
    def __init__(
        self,
        backend,
        kind: str,
        namespace: str | None,
        events: queue.Queue,
        *,
        resync_seconds: float = 1800.0,
        watch_timeout_seconds: int = 300,
        backoff_first_seconds: float = BACKOFF_FIRST_SECONDS,
    ):
        super().__init__(name=f"informer-{kind}-{namespace or 'all'}", daemon=True)
        self.backend = backend
        self.kind = kind
        self.namespace = namespace
        self.events = events
        self.resync_seconds = resync_seconds
        self.watch_timeout_seconds = watch_timeout_seconds
        self.backoff_first_seconds = backoff_first_seconds
        self.synced = threading.Event()  # the first list is in
        self.error = ""  # why the last attempt failed; "" while it works
        self.resource_version = ""
        self.lists = 0
        self._stopping = threading.Event()
        self._stream = None
        self._stream_lock = threading.Lock()

    def stop(self) -> None:
        self._stopping.set()
        with self._stream_lock:
            if self._stream is not None:
                self._stream.close()

    def run(self) -> None:
        backoff = self.backoff_first_seconds
        must_list, listed_at = True, 0.0
        while not self._stopping.is_set():
            try:
                if must_list:
                    listed_at = time.monotonic()
                    if not self._list():
                        # Not served: look again at the resync pace, watching nothing meanwhile.
                        self._stopping.wait(self.resync_seconds)
                        continue
                    must_list = False
                self._watch(listed_at)
                backoff = self.backoff_first_seconds
                if time.monotonic() - listed_at >= self.resync_seconds:
                    must_list = True
            except WatchGone as exc:
                logger.info("%s: %s; listing again", self.name, exc)
                must_list = True
            except BackendError as exc:
                self.error = str(exc)
                logger.warning("%s: %s; retrying in %.0f s", self.name, exc, backoff)
                if self._stopping.wait(backoff):
                    break
                backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)

    def _list(self) -> bool:
        listed = self.backend.list_for_watch(self.kind, self.namespace)
        self.lists += 1
        self.error = ""
        if listed is None:
            self.events.put(("missing", self.kind, self.namespace))
            self.synced.set()
            return False
        items, self.resource_version = listed
        self.events.put(("replace", self.kind, self.namespace, items))
        self.synced.set()
        return True

    def _watch(self, listed_at: float) -> None:
        stream = self.backend.open_watch(
            self.kind, self.namespace, self.resource_version, timeout_seconds=self.watch_timeout_seconds
        )
        with self._stream_lock:
            if self._stopping.is_set():
                stream.close()
            self._stream = stream
        self.error = ""
        try:
            for event in stream.events():
                if event.resource_version:
                    self.resource_version = event.resource_version
                if event.type != "BOOKMARK":
                    self.events.put(("event", self.kind, event.type, event.object))
                if self._stopping.is_set() or time.monotonic() - listed_at >= self.resync_seconds:
                    return
        finally:
            with self._stream_lock:
                self._stream = None
            stream.close()
