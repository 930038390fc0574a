"""Running ScaleDeck as a service: health and readiness probes, its own Prometheus metrics,
structured logs, and the liveness heartbeats of the Celery worker and beat."""
