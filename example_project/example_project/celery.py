"""The Celery app of the example: tasks run by a worker on Redis, or inline (eager) when no broker is configured.

``CELERY_BROKER_URL=redis://127.0.0.1:6379/0`` and ``celery -A example_project worker --loglevel INFO`` run them
in a worker; without the variable (the demo, the tests, a developer's checkout) they run inside the request.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

app = Celery("example_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
