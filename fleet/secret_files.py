"""Where ScaleDeck may read a cluster's secret files from: kubeconfigs, Prometheus token and password.

A cluster row names these files by path, and ScaleDeck sends what it reads from them to a
cluster or a Prometheus: a bearer token file of `/etc/shadow` or the web server's own
ServiceAccount token would be sent to whatever URL the row names. So paths are confined to
configured folders (`SCALEDECK_SECRET_DIRS` adds to the defaults: the data folder and
`/run/secrets`), checked when a path is set (`cluster_add`, the admin) and again each time a
file is read, after resolving symlinks, so a row edited in the database or a link swapped
later is refused as well. ScaleDeck's own secret files (its `*_FILE` settings, often mounted in
the same /run/secrets) are refused outright.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings


def secret_dirs() -> list[Path]:
    """The allowed folders, resolved (symlinks followed)."""
    return [Path(os.path.realpath(d)) for d in settings.SCALEDECK_SECRET_DIRS if d]


def own_secret_files() -> set[str]:
    """Files ScaleDeck's own settings are read from (`SCALEDECK_SECRET_KEY_FILE`, `DATABASE_URL_FILE`,
    ...): often mounted in /run/secrets beside the clusters' secrets, and never a cluster's token."""
    return {os.path.realpath(v) for k, v in os.environ.items() if k.endswith("_FILE") and v}


def path_within(path: str, dirs: list[Path]) -> bool:
    """Whether `path`, symlinks resolved, is inside one of `dirs` (already resolved). Pure."""
    resolved = Path(os.path.realpath(os.path.expanduser(path)))
    return any(resolved == d or resolved.is_relative_to(d) for d in dirs)


def secret_path_error(path: str, *, what: str) -> str | None:
    """Why `what` (e.g. "the Prometheus token file") may not be read from `path`; None when it may."""
    if "\x00" in path or any(ord(c) < 32 for c in path):
        return f"{what} path contains control characters"
    if os.path.realpath(os.path.expanduser(path)) in own_secret_files():
        return f"{what} {path} is one of ScaleDeck's own secrets (a *_FILE setting); it is never sent anywhere"
    allowed = secret_dirs()
    if path_within(path, allowed):
        return None
    folders = ", ".join(str(d) for d in allowed) or "none configured"
    return (
        f"{what} {path} is outside the folders ScaleDeck reads secrets from ({folders}); "
        "move it there or add its folder to SCALEDECK_SECRET_DIRS"
    )
