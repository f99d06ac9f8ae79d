from __future__ import annotations

import contextlib

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class ProdkitConfig(AppConfig):
    name = "django_prodkit"
    verbose_name = "django-prodkit"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from django_prodkit import checks

        checks.register_all()

        from django_prodkit.cloudwatch import install as install_cloudwatch

        # A configuration error is reported by the system checks, not raised here.
        with contextlib.suppress(ImproperlyConfigured):
            install_cloudwatch()

        from django_prodkit.metrics.otlp import install as install_otlp_metrics

        install_otlp_metrics()

        from django_prodkit.tracing.backend import setup_tracing

        setup_tracing()

        from django_prodkit.tasks.commands import start_command
        from django_prodkit.tasks.setup import setup_tasks

        start_command()
        with contextlib.suppress(ImproperlyConfigured):
            setup_tasks()

        from django_prodkit.outbound import install as install_outbound

        with contextlib.suppress(ImproperlyConfigured):
            install_outbound()
