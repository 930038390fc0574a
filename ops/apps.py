from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        # Celery signal handlers: task counters, the worker's heartbeat and metrics endpoint.
        from django.core.signals import request_finished

        from ops import celery_signals  # noqa: F401
        from ops.logs import end_request

        # After Django has logged the response (a 4xx/5xx line carries the request's id too).
        request_finished.connect(end_request, dispatch_uid="ops.logs.end_request")
