"""MIG planning: how much GPU memory each deployment needs, which MIG slices fit the models a
team runs, and repartitioning a node safely (cordon, drain through evictions, relabel, wait for
the GPU operator, uncordon, verify)."""
