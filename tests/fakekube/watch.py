"""Watches for the fake Kubernetes API: `GET <list path>?watch=true&resourceVersion=N`.

Served as a real API server does: a chunked HTTP response, one JSON event per line (`ADDED`,
`MODIFIED`, `DELETED`, and `BOOKMARK` with `allowWatchBookmarks=true`), every change after
resourceVersion N for that resource (and namespace), until `timeoutSeconds` ends the stream
cleanly. Every change the fake server makes (load, delete, touch, PATCH) is recorded here.

Switches for the ways a watch goes wrong:
- `expire_history()`: compaction. A watch that starts (or resumes) from a resourceVersion
  older than now gets an `ERROR` event with a 410 Status, as the real server sends it.
- `drop_connections()`: every open watch's connection is cut mid-stream (no final chunk), as a
  load balancer or a restarting API server does.
- `fail(path, 410, query_contains="watch=")` (the server's own switch) answers the watch request
  itself with HTTP 410.
What it does not model: a watch without a resourceVersion (a real server first sends the
current objects as ADDED events; here it starts from now), field and label selectors.
"""

from __future__ import annotations

import bisect
import copy
import json
import socket
import threading
import time
from urllib.parse import parse_qs, urlsplit

from tests.fakekube.resources import _BY_PATH, _ApiError, status_body


class WatchHub:
    def __init__(self, api) -> None:
        self._api = api
        self._changed = threading.Condition(api._lock)
        self._events: list[tuple[int, object, str, dict]] = []  # (rv, Resource, type, object)
        self._oldest_rv = 0  # a watch from below this answers 410 (history compacted)
        self._drops = 0  # bumped by drop_connections(): open watches compare and cut
        self.bookmark_seconds = 1.0
        self.open_watches = 0

    # ------------------------------------------------------------------ switches

    def expire_history(self) -> None:
        """Forget the history so far: resuming from any resourceVersion seen until now answers 410."""
        with self._changed:
            self._oldest_rv = int(self._api._last_rv) + 1
            self._events.clear()

    def drop_connections(self) -> None:
        """Cut every open watch's connection, mid-stream."""
        with self._changed:
            self._drops += 1
            self._changed.notify_all()

    def wait_for_watches(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until at least `count` watches are open (tests: the informers are listening)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.open_watches < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.05))
        return True

    # ------------------------------------------------------------------ what the server calls

    def record(self, event_type: str, resource, obj: dict) -> None:
        """A change the server made (called under its lock). DELETED gets a resourceVersion of its own."""
        obj = copy.deepcopy(obj)
        if event_type == "DELETED":
            obj.setdefault("metadata", {})["resourceVersion"] = self._api._next_rv()
        rv = str(obj.get("metadata", {}).get("resourceVersion", ""))
        if not rv.isdigit():
            return  # a raw odd object: lists serve it, watches do not
        with self._changed:
            self._events.append((int(rv), resource, event_type, obj))
            self._changed.notify_all()

    @staticmethod
    def wants(path: str) -> bool:
        query = parse_qs(urlsplit(path).query)
        return query.get("watch", [""])[-1].lower() in ("true", "1")

    def serve(self, handler) -> None:
        from tests.fakekube import server as fake

        api = self._api
        split = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        accept = handler.headers.get("Accept", "") or ""
        with api._lock:
            api.requests.append(
                fake.RecordedRequest(
                    method="GET",
                    path=split.path,
                    query=query,
                    content_type="",
                    body=None,
                    authorization=handler.headers.get("Authorization", "") or "",
                    accept=accept,
                )
            )
        try:
            api._check_rules("GET", split.path, split.query)
            api._check_auth(handler.headers.get("Authorization", "") or "")
            resource, namespace = self._target(split.path, fake)
        except _ApiError as exc:
            payload = json.dumps(exc.body()).encode()
            handler.send_response(exc.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            api.bytes_served += len(payload)
            return
        metadata_only = "as=PartialObjectMetadata" in accept
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        with self._changed:
            self.open_watches += 1
            self._changed.notify_all()
        try:
            self._stream(handler, resource, namespace, query, metadata_only, fake)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client went away
        finally:
            with self._changed:
                self.open_watches -= 1

    def _target(self, path: str, fake):
        segments = [s for s in path.split("/") if s]
        if segments[:1] == ["api"] and len(segments) >= 2:
            group, version, rest = "", segments[1], segments[2:]
        elif segments[:1] == ["apis"] and len(segments) >= 3:
            group, version, rest = segments[1], segments[2], segments[3:]
        else:
            group, version, rest = "", "", []
        namespace = None
        if len(rest) == 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        resource = _BY_PATH.get((group, version, rest[0])) if len(rest) == 1 else None
        if resource is None or group in self._api._uninstalled:
            raise _ApiError(404, "NotFound", "the server could not find the requested resource")
        return resource, namespace

    def _stream(self, handler, resource, namespace, query, metadata_only, fake) -> None:
        def send(event: dict) -> None:
            line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
            handler.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            handler.wfile.flush()
            self._api.bytes_served += len(line)

        rv = query.get("resourceVersion", "")
        timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds", "").isdigit() else 3600.0
        bookmarks = query.get("allowWatchBookmarks", "").lower() in ("true", "1")
        deadline = time.monotonic() + timeout
        next_bookmark = time.monotonic() + self.bookmark_seconds
        with self._changed:
            start = int(rv) if rv.isdigit() else int(self._api._last_rv)
            drops = self._drops
            gone = start < self._oldest_rv - 1
        if gone:
            status = status_body(410, "Expired", f"too old resource version: {start} ({self._oldest_rv - 1})")
            send({"type": "ERROR", "object": status})
            self._end(handler)
            return
        sent = start
        while True:
            with self._changed:
                pending = self._after(sent, resource)
                if not pending:
                    self._changed.wait(0.05)
                    pending = self._after(sent, resource)
                cut = self._drops != drops or self._api._stopping.is_set()
                last_rv = self._api._last_rv
            if cut:
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
                return
            for event_rv, _, event_type, obj in pending:
                sent = event_rv
                if namespace is not None and obj.get("metadata", {}).get("namespace") != namespace:
                    continue
                send({"type": event_type, "object": _as_served(obj, resource, metadata_only)})
            now = time.monotonic()
            if bookmarks and now >= next_bookmark:
                kind = "PartialObjectMetadata" if metadata_only else resource.kind
                api_version = "meta.k8s.io/v1" if metadata_only else resource.api_version
                send(
                    {
                        "type": "BOOKMARK",
                        "object": {"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": last_rv}},
                    }
                )
                next_bookmark = now + self.bookmark_seconds
            if now >= deadline:
                self._end(handler)
                return

    def _after(self, rv: int, resource) -> list:
        start = bisect.bisect_right(self._events, rv, key=lambda e: e[0])
        return [e for e in self._events[start:] if e[1] is resource]

    @staticmethod
    def _end(handler) -> None:
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()


def _as_served(obj: dict, resource, metadata_only: bool) -> dict:
    if metadata_only:
        return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata")}
    return {**obj, "kind": resource.kind, "apiVersion": resource.api_version}
