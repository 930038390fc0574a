from django.apps import AppConfig


class MigConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "mig"
    verbose_name = "MIG planning"
