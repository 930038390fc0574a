"""The Kubernetes cluster backend: the only package in ScaleDeck that imports `kubernetes`.

It builds the client, lists and patches, and maps the client's errors to one-line
`BackendError`s; what the listed objects mean is read by `objects`, `autoscaling` and `events`
(plain dicts in, `fleet.backends.base` dataclasses out, no `kubernetes` import). Writes are JSON
merge patches that carry the resourceVersion they were computed from. Each backend has its own
ApiClient (never the client's global default configuration), so one process can talk to many
clusters.

Modules:
  backend      `KubernetesClusterBackend`, what the rest of ScaleDeck builds (fleet/backends/registry.py)
  connection   the client, kubeconfig checks, calls, paged lists, and errors turned into BackendErrors
  reading      the snapshot, scaling events, and the lists and watches of `fleet.watch`
  writing      patches (scale, autoscalers, quotas) and the re-reads a write starts from
  nodes        node reads and patches, pods on a node, evictions (MIG repartitioning)
  objects, autoscaling, events, values, vllm_args
               what the listed objects mean (pure functions)
  patches      the merge-patch bodies and the allow-list check of a write (pure functions)
  watch        reading a watch's stream of events (no `kubernetes` import)
  lease        the coordination.k8s.io Lease an in-cluster watcher holds (create, or replace by resourceVersion)

Reading: responses are taken raw (`_preload_content=False`) and parsed with `json.loads`;
deserialising a 20,000-pod list into the client's model objects costs many times more (see
`bench/sync_kubernetes.py`). Lists are paged (`limit`/`continue`, as kubectl does) so a big
cluster never asks the API server for one huge response; ReplicaSets are listed as metadata
only (all we need is their owner). An object that cannot be understood is skipped and named in
`last_warnings()`, never allowed to fail the whole snapshot.

RBAC the ServiceAccount needs (ClusterRole, or Roles per allow-listed namespace):
  get/list, and watch for `cluster_watch` (`open_watch`): nodes (cluster), pods, resourcequotas,
  apps deployments, apps replicasets, autoscaling horizontalpodautoscalers, keda.sh scaledobjects,
  karpenter.sh nodepools (cluster);
  get/patch for writes: apps deployments/scale, keda.sh scaledobjects, autoscaling
  horizontalpodautoscalers, resourcequotas;
  get/create/update coordination.k8s.io leases for the watcher, in its own namespace.

This `__init__` imports nothing: the pure modules are read by `fleet.watch` and `fleet.events`
without loading the client library (half a second of imports).
"""
