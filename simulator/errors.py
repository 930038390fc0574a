"""Errors the simulated cluster raises, shaped like the Kubernetes API's refusals.

The adapter in `fleet/backends/simulated/` maps them onto `BackendError`, so code above
the backends sees the same failures from a simulated cluster as from a real one.
"""


class SimError(Exception):
    """Base class: something the simulated API server refused."""


class SimConflict(SimError):
    """The object's resource_version moved on since the caller read it (HTTP 409)."""


class SimNotFound(SimError):
    """No such object (HTTP 404)."""


class SimInvalid(SimError, ValueError):
    """The request is malformed or violates a validation rule (HTTP 422)."""
