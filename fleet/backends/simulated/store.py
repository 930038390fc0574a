"""Where a simulated world is kept between calls, and the clock both simulated backends read."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Protocol

from simulator import World

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock: now, in UTC."""
    return datetime.now(UTC)


class WorldStore(Protocol):
    """Where the simulated world is kept between calls.

    `load` then `save` is a read-modify-write: a store shared by several processes must
    serialize it, or a write made between another caller's load and save is lost: `atomic()` is
    a context manager holding its lock (e.g. `transaction.atomic()` around a `SELECT ... FOR
    UPDATE` load), and the cluster backend runs every load-advance-save inside it.
    """

    def load(self) -> World: ...

    def save(self, world: World) -> None: ...

    def atomic(self) -> AbstractContextManager: ...

    def namespace_writable(self, namespace: str) -> bool:
        """Whether writes to `namespace` are allowed (the cluster row's allow-list)."""
        ...


class InMemoryWorldStore:
    """Keeps the world as JSON text, so every load is a fresh copy, exactly like a database row."""

    def __init__(self, world: World):
        self._json = ""
        self.save(world)

    def load(self) -> World:
        return World.from_dict(json.loads(self._json))

    def save(self, world: World) -> None:
        self._json = json.dumps(world.to_dict(), separators=(",", ":"))

    def atomic(self) -> AbstractContextManager:
        """No lock: one process, one caller at a time (tests, the what-if's private copies)."""
        return nullcontext()

    def namespace_writable(self, namespace: str) -> bool:
        """Every namespace: a world kept in memory belongs to no cluster row and its allow-list."""
        return True

    @property
    def size_bytes(self) -> int:
        return len(self._json)
