"""Liveness heartbeats for the Celery worker and beat, and the probe that reads them.

A worker or beat that is running but stuck answers no HTTP request a kubelet could send, so
each touches a file from its own loop (the worker from its consumer's timer, beat from each
scheduler tick), and the liveness probe is an exec of

    python -m ops.heartbeat worker --max-age 60

which fails when the file is older than that. It imports nothing from Django (a probe runs
every few seconds and must be cheap). The folder is SCALEDECK_HEARTBEAT_DIR, default the
data dir; in Kubernetes it is the pod's /tmp.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

KINDS = ("worker", "beat")


def heartbeat_dir() -> Path:
    configured = os.environ.get("SCALEDECK_HEARTBEAT_DIR")
    if configured:
        return Path(configured)
    from django.conf import settings

    return Path(settings.DATA_DIR)


def heartbeat_path(kind: str, folder: Path | None = None) -> Path:
    if kind not in KINDS:
        raise ValueError(f"unknown heartbeat {kind!r}")
    return (folder or heartbeat_dir()) / f"{kind}.heartbeat"


def touch(kind: str) -> None:
    path = heartbeat_path(kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{time.time():.3f}\n")


def age_seconds(path: Path, *, now: float | None = None) -> float | None:
    """Seconds since the heartbeat was written; None when there is none."""
    try:
        written = float(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return (time.time() if now is None else now) - written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.heartbeat", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--max-age", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--dir", type=Path, help="folder of the heartbeat files (default SCALEDECK_HEARTBEAT_DIR)")
    args = parser.parse_args(argv)
    folder = args.dir or Path(os.environ.get("SCALEDECK_HEARTBEAT_DIR") or "/tmp")  # noqa: S108 - the pod's own /tmp
    path = heartbeat_path(args.kind, folder)
    age = age_seconds(path)
    if age is None:
        print(f"{args.kind}: no heartbeat at {path}", file=sys.stderr)
        return 1
    if age > args.max_age:
        print(f"{args.kind}: last heartbeat {age:.0f} s ago (limit {args.max_age:.0f} s)", file=sys.stderr)
        return 1
    print(f"{args.kind}: alive, heartbeat {age:.0f} s ago")
    return 0


if __name__ == "__main__":
    sys.exit(main())
