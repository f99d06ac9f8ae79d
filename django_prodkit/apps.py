from __future__ import annotations

from django.apps import AppConfig


class ProdkitConfig(AppConfig):
    name = "django_prodkit"
    verbose_name = "django-prodkit"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from django_prodkit import checks

        checks.register_all()
