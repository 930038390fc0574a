"""What a watcher knows of its cluster: the informers' caches, and the facts read from them.

Pure (no Django, no I/O). Informers put objects in (`replace` after a list, `event` for each watch
event); `take_changes` re-reads only the objects touched since the last call, plus the ones they
affect, and says which facts changed. The readers are `read_snapshot`'s own
(`fleet.backends.kubernetes.objects`), so a watched cluster reads exactly as a listed one.

What depends on what, and is therefore re-read with it:
- a pod's Deployment comes through its ReplicaSet: a ReplicaSet that changes owner re-reads its
  pods; a Deployment that starts or stops being a model deployment re-reads the pods in its
  namespace named after it, and re-links the autoscalers that target it;
- on a MIG single-strategy node a pod's `nvidia.com/gpu` is a slice: a node whose MIG layout
  changes re-reads its pods;
- which pod holds which GPU is inferred per node from its pods: a pod that arrives, leaves,
  moves or changes its GPU requests marks its node's GPUs for re-packing (`gpu_nodes`), a pod
  that only becomes Ready does not;
- node pools are the NodePools plus the pool names nodes carry: recomputed when either changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from fleet.backends.base import ClusterSnapshot, NodeFacts, PodFacts
from fleet.backends.kubernetes.autoscaling import parse_hpa, parse_nodepool, parse_quota, parse_scaledobject
from fleet.backends.kubernetes.objects import controller_of, read_deployment, read_node, read_pod
from fleet.backends.kubernetes.values import OddObject, Warnings, as_dict, as_str, identity, parse_all
from fleet.rows import pool_rows

# The kinds the sync reads, as the informers name them, and whether each is namespaced.
KINDS: dict[str, bool] = {
    "nodes": False,
    "pods": True,
    "replicasets": True,
    "deployments": True,
    "hpas": True,
    "scaledobjects": True,
    "quotas": True,
    "nodepools": False,
}
_HOLDING_PHASES = ("Running", "Pending", "Unknown")


@dataclass
class Changes:
    """Keys of the facts that changed (appeared, changed or vanished) since the last batch."""

    node_pools: set[str] = field(default_factory=set)
    nodes: set[str] = field(default_factory=set)
    deployments: set[tuple[str, str]] = field(default_factory=set)
    autoscalers: set[tuple[str, str, str]] = field(default_factory=set)  # (namespace, kind, name)
    pods: set[tuple[str, str]] = field(default_factory=set)
    quotas: set[tuple[str, str]] = field(default_factory=set)
    gpu_nodes: set[str] = field(default_factory=set)  # nodes whose GPUs or holders must be re-packed
    warnings: list[str] = field(default_factory=list)

    def count(self) -> int:
        return sum(
            len(keys)
            for keys in (self.node_pools, self.nodes, self.deployments, self.autoscalers, self.pods, self.quotas)
        ) + len(self.gpu_nodes)

    def __bool__(self) -> bool:
        return self.count() > 0


def _rv(obj: dict) -> str:
    return as_str(as_dict(obj.get("metadata")).get("resourceVersion"))


def _holding(pod: PodFacts | None) -> tuple | None:
    """What GPU packing reads of a pod: where it runs, whether it holds devices, and how many."""
    if pod is None:
        return None
    return (pod.node_name, pod.phase in _HOLDING_PHASES, tuple(sorted(pod.gpu_requests.items())))


def _gpu_shape(node: NodeFacts | None) -> tuple | None:
    if node is None:
        return None
    return (node.gpu_product, node.gpu_count, node.gpu_memory_mib, node.mig_config, node.mig_strategy, node.capacity)


class ClusterState:
    def __init__(self) -> None:
        self.raw: dict[str, dict[tuple[str, str], dict]] = {kind: {} for kind in KINDS}
        self.missing: set[str] = set()  # kinds the API server does not serve (a CRD not installed)
        self._dirty: dict[str, set[tuple[str, str]]] = {kind: set() for kind in KINDS}
        self._odd: list[str] = []
        # Facts, keyed as their rows are.
        self.nodes: dict[str, NodeFacts] = {}
        self.pods: dict[tuple[str, str], PodFacts] = {}
        self.deployments: dict[tuple[str, str], object] = {}
        self.autoscalers: dict[tuple[str, str, str], object] = {}
        self.quotas: dict[tuple[str, str], object] = {}
        self.nodepools: dict[str, object] = {}
        self.pool_rows: dict[str, dict] = {}
        # Indexes the dependencies above are followed through.
        self._autoscaler_key: dict[tuple[str, str, str], tuple[str, str, str]] = {}  # (kind, ns, name) -> key
        self._rs_owner: dict[tuple[str, str], str] = {}  # (namespace, ReplicaSet) -> Deployment
        self._pods_by_owner: dict[tuple[str, str], set] = defaultdict(set)  # (namespace, controller)
        self._pods_by_node: dict[str, set] = defaultdict(set)

    # ------------------------------------------------------------------ informers write

    def replace(self, kind: str, items: Iterable[dict], *, namespace: str | None = None) -> None:
        """A list's items: the whole truth about `kind` (in `namespace`, or everywhere)."""
        self.missing.discard(kind)
        seen = set()
        for obj in items:
            key = self._key(kind, obj)
            if key is not None:
                seen.add(key)
                self._put(kind, key, obj)
        for key in [k for k in self.raw[kind] if namespace in (None, k[0]) and k not in seen]:
            self._remove(kind, key)

    def not_served(self, kind: str) -> None:
        """The API server answers 404 for `kind` (its CRD is not installed): none of them."""
        self.replace(kind, [])
        self.missing.add(kind)

    def event(self, kind: str, event_type: str, obj: dict) -> None:
        """One watch event: ADDED, MODIFIED or DELETED."""
        key = self._key(kind, obj)
        if key is None:
            return
        if event_type == "DELETED":
            self._remove(kind, key)
        else:
            self._put(kind, key, obj)

    def _key(self, kind: str, obj: object) -> tuple[str, str] | None:
        try:
            return identity(obj, KINDS[kind])
        except OddObject as exc:
            self._odd.append(f"skipped a {kind.rstrip('s')} without a usable identity: {exc}")
            return None

    def _put(self, kind: str, key: tuple[str, str], obj: dict) -> None:
        old = self.raw[kind].get(key)
        if old is not None and _rv(old) and _rv(old) == _rv(obj):
            return  # a re-list returning what the watch already delivered
        if kind == "pods":
            self._unindex_pod(key, old)
            _, owner = controller_of(obj)
            self._pods_by_owner[(key[0], owner)].add(key)
            self._pods_by_node[as_str(as_dict(obj.get("spec")).get("nodeName"))].add(key)
        self.raw[kind][key] = obj
        self._dirty[kind].add(key)

    def _remove(self, kind: str, key: tuple[str, str]) -> None:
        old = self.raw[kind].pop(key, None)
        if old is None:
            return
        if kind == "pods":
            self._unindex_pod(key, old)
        self._dirty[kind].add(key)

    def _unindex_pod(self, key: tuple[str, str], old: dict | None) -> None:
        if old is None:
            return
        _, owner = controller_of(old)
        self._pods_by_owner[(key[0], owner)].discard(key)
        self._pods_by_node[as_str(as_dict(old.get("spec")).get("nodeName"))].discard(key)

    # ------------------------------------------------------------------ reading what changed

    def take_changes(self) -> Changes:
        """Re-read what was touched since the last call; the keys of the facts that changed."""
        dirty, self._dirty = self._dirty, {kind: set() for kind in KINDS}
        changes = Changes()
        warnings = Warnings()
        for line in self._odd:
            warnings.add(line)
        self._odd = []
        self._read_replicasets(dirty)
        came_or_went = self._read_deployments(dirty, changes, warnings)
        hosts_came_or_went = self._read_nodes(dirty, changes, warnings)
        self._read_pods(dirty["pods"], changes, warnings)
        # A pod row points at its Deployment and node rows while they exist: re-link the pods of
        # those that appeared or vanished, even when the pods themselves read the same.
        if came_or_went:
            changes.pods |= {
                k
                for k, p in self.pods.items()
                if p.owner_kind == "Deployment" and (p.namespace, p.owner_name) in came_or_went
            }
        for name in hosts_came_or_went:
            changes.pods |= {k for k in self._pods_by_node.get(name, ()) if k in self.pods}
        for kind, parse in (
            ("hpas", parse_hpa),
            ("scaledobjects", lambda o, ns, n: parse_scaledobject(o, ns, n, warnings)),
        ):
            self._read_autoscalers(kind, parse, dirty[kind], changes, warnings)
        for key in dirty["quotas"]:
            if self._read_simple(self.quotas, key, "resourcequota", self.raw["quotas"].get(key), parse_quota, warnings):
                changes.quotas.add(key)
        pools_touched = False
        for key in dirty["nodepools"]:
            obj = self.raw["nodepools"].get(key)
            pools_touched |= self._read_simple(self.nodepools, key[1], "nodepool", obj, parse_nodepool, warnings, False)
        if pools_touched or changes.nodes:
            rows = pool_rows(self.nodepools.values(), self.nodes.values())
            changes.node_pools = {
                name for name in rows.keys() | self.pool_rows.keys() if rows.get(name) != self.pool_rows.get(name)
            }
            self.pool_rows = rows
        changes.warnings = warnings.result()
        return changes

    def _read_simple(self, store: dict, key: Hashable, what: str, obj, parse, warnings, namespaced=True) -> bool:
        old = store.pop(key, None)
        facts = parse_all(what, [obj], parse, warnings, namespaced) if obj is not None else []
        if facts:
            store[key] = facts[0]
        return store.get(key) != old

    def _read_replicasets(self, dirty: dict) -> None:
        for key in dirty["replicasets"]:
            old = self._rs_owner.pop(key, None)
            obj = self.raw["replicasets"].get(key)
            kind, owner = controller_of(obj) if obj is not None else ("", "")
            if kind == "Deployment" and owner:
                self._rs_owner[key] = owner
            if self._rs_owner.get(key) != old:
                dirty["pods"] |= self._pods_by_owner.get(key, set())

    def _read_deployments(self, dirty: dict, changes: Changes, warnings: Warnings) -> set:
        """Read the touched Deployments; the keys of those that appeared or vanished."""
        came_or_went = set()
        for key in dirty["deployments"]:
            namespace, name = key
            was = key in self.deployments
            obj = self.raw["deployments"].get(key)
            parse = lambda o, ns, n: read_deployment(o, ns, n, warnings)  # noqa: E731
            if self._read_simple(self.deployments, key, "deployment", obj, parse, warnings):
                changes.deployments.add(key)
            if was == (key in self.deployments):
                continue
            came_or_went.add(key)
            # It became (or stopped being) a model deployment: its pods and autoscalers follow.
            for (ns, owner), pods in self._pods_by_owner.items():
                if ns == namespace and (self._rs_owner.get((ns, owner)) == name or owner.startswith(f"{name}-")):
                    dirty["pods"] |= pods
            changes.autoscalers |= {
                k for k, a in self.autoscalers.items() if k[0] == namespace and a.target_name == name
            }
        return came_or_went

    def _read_nodes(self, dirty: dict, changes: Changes, warnings: Warnings) -> set:
        """Read the touched nodes; the names of those that appeared or vanished."""
        came_or_went = set()
        for key in dirty["nodes"]:
            name = key[1]
            old = self.nodes.get(name)
            parse = lambda o, _ns, n: read_node(o, n, warnings)  # noqa: E731
            if not self._read_simple(self.nodes, name, "node", self.raw["nodes"].get(key), parse, warnings, False):
                continue
            new = self.nodes.get(name)
            changes.nodes.add(name)
            if (old is None) != (new is None):
                came_or_went.add(name)
            if _gpu_shape(old) != _gpu_shape(new):
                changes.gpu_nodes.add(name)
                dirty["pods"] |= self._pods_by_node.get(name, set())  # MIG single strategy: slices
        return came_or_went

    def _read_pods(self, keys: set, changes: Changes, warnings: Warnings) -> None:
        for key in keys:
            old = self.pods.pop(key, None)
            obj = self.raw["pods"].get(key)
            new = None
            if obj is not None:
                node = self.nodes.get(as_str(as_dict(obj.get("spec")).get("nodeName")))

                def parse(o, ns, n, node=node):
                    return read_pod(o, ns, n, replicasets=self._rs_owner, deployments=self.deployments, node=node)

                facts = parse_all("pod", [obj], parse, warnings)
                new = facts[0] if facts else None
            if new is not None:
                self.pods[key] = new
            if new == old:
                continue
            changes.pods.add(key)
            if _holding(old) != _holding(new):
                changes.gpu_nodes |= {p.node_name for p in (old, new) if p is not None and p.node_name}

    def _read_autoscalers(self, kind: str, parse, keys: set, changes: Changes, warnings: Warnings) -> None:
        for namespace, name in keys:
            old_key = self._autoscaler_key.pop((kind, namespace, name), None)
            old = self.autoscalers.pop(old_key, None) if old_key else None
            obj = self.raw[kind].get((namespace, name))
            facts = parse_all(kind.rstrip("s"), [obj], parse, warnings) if obj is not None else []
            new_key = None
            if facts:
                new = facts[0]
                new_key = (new.namespace or namespace, new.kind, new.name)
                self._autoscaler_key[(kind, namespace, name)] = new_key
                self.autoscalers[new_key] = new
            if old_key != new_key or self.autoscalers.get(new_key) != old:
                changes.autoscalers |= {k for k in (old_key, new_key) if k is not None}

    def forget_facts(self) -> None:
        """Forget every fact read (the database may not hold them, after a failed write): the
        next `take_changes` reads every cached object again."""
        for store in (self.nodes, self.pods, self.deployments, self.autoscalers, self.quotas, self.nodepools):
            store.clear()
        self.pool_rows = {}
        self._autoscaler_key.clear()
        self._rs_owner.clear()
        self._dirty = {kind: set(self.raw[kind]) for kind in KINDS}

    # ------------------------------------------------------------------ the whole picture

    def pods_on(self, node_names: Iterable[str]) -> list[PodFacts]:
        """The facts of every kept pod on these nodes."""
        out = []
        for name in node_names:
            out += [self.pods[key] for key in self._pods_by_node.get(name, ()) if key in self.pods]
        return out

    def snapshot(self, taken_at: datetime) -> ClusterSnapshot:
        """Everything, as one snapshot (the first apply after a watcher starts)."""
        return ClusterSnapshot(
            taken_at=taken_at,
            nodes=tuple(self.nodes.values()),
            pods=tuple(self.pods.values()),
            deployments=tuple(self.deployments.values()),
            autoscalers=tuple(self.autoscalers.values()),
            quotas=tuple(self.quotas.values()),
            node_pools=tuple(self.nodepools.values()),
            keda_installed="scaledobjects" not in self.missing,
        )
