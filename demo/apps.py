from django.apps import AppConfig


class DemoConfig(AppConfig):
    """`make demo`'s commands: a simulated cluster with prices and users, and the processes that serve it."""

    name = "demo"
    verbose_name = "Demo"
