"""Which process holds a claim, and whether it is provably gone.

A running action names the process that claimed it: `host:pid:start`, where `start` is the
process's start time as the kernel counts it (clock ticks since boot, from /proc). Another process on
the same host can then tell for sure that the claimer is dead: no process has that pid, or the one
that has it started at another time (the pid was reused). That lets a lost claim be taken over at
once, by the redelivered message of a killed pool process or by a restarted worker, instead of
after STUCK_RUNNING_SECONDS. A claimer on another host, or on a system without /proc start times,
is never declared dead here: the reconciler's timeout covers those.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after its last ")".
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def this_process() -> str:
    """`host:pid:start` of the calling process (computed per call: a forked child has its own)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or '?'}"


def process_is_gone(claimed_by: str) -> bool:
    """True only when `claimed_by` names a process on this host that no longer exists."""
    host, _, rest = (claimed_by or "").partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit() or start in ("", "?"):
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    now_start = _start_ticks(pid)
    if now_start is None:
        # No /proc entry: gone, if /proc is there at all (it is, for this very process).
        return _start_ticks(os.getpid()) is not None
    return now_start != start
