"""A simulated GPU cluster serving LLM traffic: pure Python, stdlib only, no Django.

The demo world behind `make demo`, the test double behind the simulated backends, and the
what-if engine. Deterministic for a seed; time moves only when the caller says so.
"""

from .autoscalers import Autoscaler
from .capacity import ReplicaCapacity
from .demo import demo_world
from .errors import SimConflict, SimError, SimInvalid, SimNotFound
from .objects import Deployment, Node, NodePool, Pod, Quota
from .readings import GpuReading
from .traffic import Constant, Diurnal, Spike, TraceReplay, Traffic
from .whatif import Policy, Summary, compare_policies
from .world import KEEP, World

__all__ = [
    "KEEP",
    "Autoscaler",
    "Constant",
    "Deployment",
    "Diurnal",
    "GpuReading",
    "Node",
    "NodePool",
    "Pod",
    "Policy",
    "Quota",
    "ReplicaCapacity",
    "SimConflict",
    "SimError",
    "SimInvalid",
    "SimNotFound",
    "Spike",
    "Summary",
    "TraceReplay",
    "Traffic",
    "World",
    "compare_policies",
    "demo_world",
]
