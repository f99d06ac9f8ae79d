"""The blog app: posts, comments and tags behind a REST API."""

from __future__ import annotations

from django.apps import AppConfig


class BlogConfig(AppConfig):
    """App config for the example blog."""

    name = "blog"
    default_auto_field = "django.db.models.BigAutoField"
