"""Turning the task integrations on at startup, importing a task system only when it is installed and wanted."""

from __future__ import annotations

import importlib.util

from django_prodkit.conf import get_config

CELERY_MODULE = "celery"


def celery_installed() -> bool:
    """Whether Celery can be imported (checked without importing it)."""
    return importlib.util.find_spec(CELERY_MODULE) is not None


def setup_tasks() -> None:
    """Connect the Celery and Django Tasks handlers the configuration asks for (from ``AppConfig.ready``)."""
    config = get_config()
    if config["CELERY_INTEGRATION"] and celery_installed():
        from django_prodkit.tasks import celery

        celery.connect()
    if config["DJANGO_TASKS_INTEGRATION"]:
        from django_prodkit.tasks import django_tasks

        django_tasks.connect()
