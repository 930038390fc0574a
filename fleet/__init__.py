"""What exists: clusters, GPU nodes, GPUs, MIG devices, model deployments, pods; the backends and the sync."""
