"""The GPU operator's mig-manager, played against a FakeKubeApi.

When a node's `nvidia.com/mig.config` label changes, the real mig-manager sets
`nvidia.com/mig.config.state=pending`, repartitions the GPUs (minutes), then sets `success` (or
`failed`) and the device plugin advertises the new `nvidia.com/mig-<profile>` resources. Here the
state turns `pending` on the request after the relabel, and `success` (with the new capacity) after
`settle_reads` more reads of the node, so a client polling the node sees every stage in order.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

CONFIG = "nvidia.com/mig.config"
STATE = "nvidia.com/mig.config.state"


@dataclass
class MigManager:
    layouts: dict[str, dict[str, int]]  # mig.config name -> node capacity it yields ({"nvidia.com/mig-1g.10gb": 56})
    settle_reads: int = 2
    outcome: str = "success"  # or "failed"
    applied: dict[str, str] = field(default_factory=dict)  # node -> the config it last acted on
    _reads_left: dict[str, int] = field(default_factory=dict)

    def install(self, api, *nodes: str) -> MigManager:
        """Watch `nodes` (their current label is the layout they hold) on `api`."""
        for name in nodes:
            self.applied[name] = api.get("Node", "", name).get("metadata", {}).get("labels", {}).get(CONFIG, "")
        api.reactors.append(self)
        return self

    def __call__(self, api, method: str, path: str) -> None:
        name = path.rsplit("/", 1)[-1]
        if not path.startswith("/api/v1/nodes/") or name not in self.applied:
            return
        node = api.get("Node", "", name)
        labels = node.setdefault("metadata", {}).setdefault("labels", {})
        config = labels.get(CONFIG, "")
        if method == "PATCH" and config != self.applied[name]:
            self.applied[name] = config
            self._reads_left[name] = self.settle_reads
            labels[STATE] = "pending"
            self._store(api, node)
            return
        if method == "GET" and name in self._reads_left:
            self._reads_left[name] -= 1
            if self._reads_left[name] <= 0:
                del self._reads_left[name]
                labels[STATE] = self.outcome
                if self.outcome == "success":
                    capacity = {
                        k: v
                        for k, v in (node.get("status") or {}).get("capacity", {}).items()
                        if not k.startswith("nvidia.com/mig-")
                    }
                    capacity.update({k: str(v) for k, v in self.layouts.get(config, {}).items()})
                    node.setdefault("status", {})["capacity"] = capacity
                    node["status"]["allocatable"] = copy.deepcopy(capacity)
                self._store(api, node)

    @staticmethod
    def _store(api, node: dict) -> None:
        node["metadata"].pop("resourceVersion", None)
        api.load(node)
