"""Helpers for the Kubernetes backend tests: a backend on a kubeconfig, picking an object by name,
and the one-line BackendError a call raises."""

from __future__ import annotations

import socket

import pytest

from fleet.backends.base import BackendError
from fleet.backends.kubernetes.backend import KubernetesClusterBackend

TOKEN = "fake-token-0123456789"
MERGE = "application/merge-patch+json"


def backend(kubeconfig, **kwargs) -> KubernetesClusterBackend:
    return KubernetesClusterBackend(kubeconfig_path=str(kubeconfig), **kwargs)


def by_name(items, name, namespace=None):
    found = [i for i in items if i.name == name and (namespace is None or i.namespace == namespace)]
    assert len(found) == 1, f"{name}: {found}"
    return found[0]


def error_of(call) -> BackendError:
    with pytest.raises(BackendError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return info.value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
