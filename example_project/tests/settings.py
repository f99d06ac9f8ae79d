"""The example's real settings, given the environment a test run needs and nothing else.

``example_project.settings`` reads everything from environment variables and refuses to start without a secret
key when DEBUG is off; pytest-django imports the settings before any conftest runs, so the variables are set here.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "example-tests-only-not-a-secret")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("DJANGO_STATIC_ROOT", os.path.join(tempfile.gettempdir(), "prodkit-example-static"))
# whitenoise warns (an error in the tests) about a static root that does not exist; collectstatic is not needed.
os.makedirs(os.environ["DJANGO_STATIC_ROOT"], exist_ok=True)
os.environ.setdefault("PRODKIT_METRICS_TOKENS", "example-tests-metrics-token")

from example_project.settings import *  # noqa: E402, F403

# The manifest needs `collectstatic`; the API tests render no templates that would need it.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
