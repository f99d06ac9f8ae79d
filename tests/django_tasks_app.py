"""Tasks for the Django Tasks tests: ``django.tasks`` on Django 6.x, the ``django-tasks`` backport on 5.2."""

from __future__ import annotations

import logging

import django

if django.VERSION >= (6, 0):
    from django.tasks import task
else:
    from django_tasks import task

logger = logging.getLogger("tests.tasks")


@task()
def note(label: str) -> str:
    logger.info("django task ran", extra={"label": label})
    return label


@task()
def broken() -> None:
    raise ValueError("this task always fails")
