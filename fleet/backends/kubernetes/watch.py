"""Reading a Kubernetes watch stream: one JSON event per line, over a chunked HTTP response.

No `kubernetes` import: `fleet.backends.kubernetes` opens the request (the only module that
talks to the client) and hands the raw urllib3 response here. What the events mean for the
sync is `fleet.watch`'s business; this module only says what arrived, and turns the two ways a
watch ends badly into errors: a 410 ("the resourceVersion you resume from is too old": list
again) is `WatchGone`, a broken connection is a transient `BackendError` (resume from the last
resourceVersion seen).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import urllib3

from fleet.backends.base import BackendError, one_line
from fleet.backends.kubernetes.values import as_dict, as_str

EVENT_TYPES = ("ADDED", "MODIFIED", "DELETED", "BOOKMARK")


class WatchGone(BackendError):
    """410 Gone: the history behind the resourceVersion is compacted away; only a list helps."""

    def __init__(self, message: str):
        super().__init__(message, transient=True, status=410)


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK
    object: dict
    resource_version: str


class WatchStream:
    """One open watch. Iterate `events()`; `close()` (from any thread) ends it quietly."""

    def __init__(self, response, *, what: str, transport_error: Callable[[Exception], BackendError]):
        self._response = response
        self._what = what
        self._transport_error = transport_error
        self._closed = False
        self.bytes_read = 0

    def events(self) -> Iterator[WatchEvent]:
        buffer = b""
        try:
            for chunk in self._response.stream(amt=None, decode_content=False):
                self.bytes_read += len(chunk)
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    event = self._event(line)
                    if event is not None:
                        yield event
            event = self._event(buffer)
            if event is not None:
                yield event
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if not self._closed:
                raise self._transport_error(exc) from None
        finally:
            self._release()

    def _event(self, line: bytes) -> WatchEvent | None:
        if not line.strip():
            return None
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise BackendError(f"the watch of {self._what} sent something that is not a JSON event", transient=True)
        kind, obj = as_str(doc.get("type")), as_dict(doc.get("object"))
        if kind == "ERROR":
            code = obj.get("code")
            message = one_line(as_str(obj.get("message")), 200)
            if code == 410:
                raise WatchGone(f"the watch of {self._what} is too old to resume (410): {message}")
            raise BackendError(f"the watch of {self._what} ended with an error ({code}): {message}", transient=True)
        if kind not in EVENT_TYPES:
            return None  # a newer event type we do not know: nothing of ours changed
        rv = as_str(as_dict(obj.get("metadata")).get("resourceVersion"))
        return WatchEvent(type=kind, object=obj, resource_version=rv)

    def close(self) -> None:
        """Stop reading: unblocks a thread waiting in `events()`, which then ends quietly."""
        self._closed = True
        # A response already released (ValueError: no socket to shut) has nothing left to unblock.
        with contextlib.suppress(urllib3.exceptions.HTTPError, OSError, ValueError):
            self._response.shutdown()

    def _release(self) -> None:
        # Closed, not returned to the pool half-read: the next request opens a clean connection.
        with contextlib.suppress(urllib3.exceptions.HTTPError, OSError):
            self._response.close()
        self._response.release_conn()
