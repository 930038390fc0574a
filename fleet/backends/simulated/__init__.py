"""The simulated backends: a `simulator.World` behind the ClusterBackend and MetricsBackend protocols.

Modules: `store` (where the world is kept between calls), `cluster` (the cluster backend and the
facts a world reads as), `metrics` (the metrics backend), `events` (the world's scaling story).

The world lives in a `WorldStore` (the Django side keeps it in the database; tests use
`InMemoryWorldStore`). Each call loads it and advances it to the clock's now, so the cluster
moves on between page loads as a real one would. The cluster backend saves what it advanced
(and its writes); the metrics backend advances a throwaway copy and never saves, so reading
metrics cannot race a write.

Facts read the way a real cluster's labels and capacity would: a MIG node keeps gpu_count 8
and advertises `nvidia.com/gpu: 0` next to its `nvidia.com/mig-<profile>` counts; a node
still launching has Karpenter's labels but no GPU labels and no GPU capacity yet; a KEDA
ScaledObject comes with the `keda-hpa-<name>` HPA it owns, unless paused.
"""
