"""The deployments of the fake exporter's fleet (exporter.py), as the metrics backend is asked about them."""

from fleet.backends.base import DeploymentRef

LLAMA = DeploymentRef("team-a", "llama", ("llama-7d9f8-aaaaa", "llama-7d9f8-bbbbb"))
QWEN_NEW = DeploymentRef("team-a", "qwen-new", ("qwen-new-6b7c5-ccccc",))
QWEN_OLD = DeploymentRef("team-a", "qwen-old", ("qwen-old-6b7c5-ddddd",))
QWEN_MIX = DeploymentRef("team-a", "qwen-mix", ("qwen-mix-6b7c5-eeeee",))
MIG_SVC = DeploymentRef("team-a", "mig-svc", ("mig-svc-55f4c-fffff",))
GAPPY = DeploymentRef("team-a", "gappy", ("gappy-64d5b-ggggg",))
WEIRD = DeploymentRef("edge", "weird", ('we"ird.*',))
RELABELLED = DeploymentRef("team-b", "relab", ("relab-8c9d7-hhhhh", "relab-8c9d7-iiiii"))
GHOST = DeploymentRef("team-a", "ghost", ("ghost-1111-zzzzz",))
