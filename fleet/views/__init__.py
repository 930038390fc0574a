"""Fleet pages. Each page view renders the whole page, or only its fragment when HTMX asks (see `wants_fragment`)."""

from fleet.views.deployments import deployment_detail
from fleet.views.nodes import nodes, nodes_gpu_utilization
from fleet.views.overview import overview

__all__ = ["deployment_detail", "nodes", "nodes_gpu_utilization", "overview"]
