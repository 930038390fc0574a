"""Helpers for the tests of carrying out scale actions: a cluster writer that notes the transaction
depth of each call, pending actions not yet sent to a worker, and a worker killed at any point."""

from __future__ import annotations

import socket
import subprocess
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from scaling.models import ScaleAction
from scaling.services import (
    Actor,
    actions_redispatch_stuck,
    execution,
    overrides_expire_due,
    scale_action_execute,
    workers,
)
from scaling.services.actions import scale_action_request

CLUSTER_CALLS = ("read_object", "scale_deployment", "patch_scaledobject", "patch_hpa", "patch_quota")
ALICE = Actor(label="alice", key="user:1")


class ClusterCalls(list):
    """(method, transaction depth) of every call to the cluster; `on_write` runs before each write,
    `after_write` once the cluster has answered it."""

    on_write = None
    after_write = None


class RecordingWriter:
    """The real cluster writer, noting how deep in transactions each call to the cluster is made."""

    def __init__(self, inner, calls: ClusterCalls):
        self._inner, self._calls = inner, calls

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if name not in CLUSTER_CALLS:
            return attr

        def call(*args, **kwargs):
            self._calls.append((name, len(connection.atomic_blocks)))
            if name != "read_object" and self._calls.on_write is not None:
                self._calls.on_write()
            answer = attr(*args, **kwargs)
            if name != "read_object" and self._calls.after_write is not None:
                self._calls.after_write()
            return answer

        return call


def pending(deployment, replicas, **kw) -> ScaleAction:
    """A stored pending action, not sent to a worker: each test runs it when it wants to."""
    return scale_action_request(
        deployment=deployment,
        replicas=replicas,
        mode="floor",
        reason="r",
        actor=ALICE,
        source="api",
        dispatch=False,
        **kw,
    )


class WorkerKilled(BaseException):
    """SIGKILL, as seen from inside: nothing after this point runs (not even `except Exception`)."""


def kill_the_worker():
    raise WorkerKilled


def gone_process() -> str:
    """The claim string of a process on this host that has exited."""
    proc = subprocess.Popen(["sleep", "30"])
    try:
        return f"{socket.gethostname()}:{proc.pid}:{workers._start_ticks(proc.pid)}"
    finally:
        proc.kill()
        proc.wait()


def killed(action_id: int) -> ScaleAction:
    with pytest.raises(WorkerKilled):
        scale_action_execute(action_id=action_id)
    return ScaleAction.objects.get(id=action_id)


def rerun_after_the_reconciler(action_id: int, *, at=None) -> ScaleAction:
    """The reconciler finds the claim timed out, puts the action back, and a worker runs it again."""
    later = (at or timezone.now()) + timedelta(seconds=execution.STUCK_RUNNING_SECONDS + 1)
    assert action_id in actions_redispatch_stuck(now=later, dispatch=False)
    return scale_action_execute(action_id=action_id)


def restore_due(override: ScaleAction, *, now) -> ScaleAction:
    [restore_id] = overrides_expire_due(now=now, dispatch=False)
    return scale_action_execute(action_id=restore_id)


def make_target(world, kind):
    dep = world.deployment(replicas=4)
    if kind == "scaledobject":
        world.keda(dep, min_replicas=1)
    elif kind == "hpa":
        world.hpa(dep, min_replicas=1, max_replicas=4)
    return dep
