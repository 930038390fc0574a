from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "scaling.alerts"
    label = "alerts"
    verbose_name = "SLOs and alerts"
    default_auto_field = "django.db.models.BigAutoField"
