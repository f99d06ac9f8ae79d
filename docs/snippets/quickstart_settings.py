# django-prodkit: add to the end of settings.py
import os

from django_prodkit.logging import configure_logging

INSTALLED_APPS += ["django_prodkit"]

MIDDLEWARE = [
    "django_prodkit.middleware.RequestIDMiddleware",
    "django_prodkit.middleware.AccessLogMiddleware",
    "django_prodkit.middleware.HealthCheckMiddleware",
    "django_prodkit.middleware.MetricsMiddleware",
    *MIDDLEWARE,
]

LOGGING = configure_logging(fmt="console" if DEBUG else "json")

PRODKIT = {
    "SERVICE_NAME": "mysite",
    # Who may read /api/v1/metrics/; better: PRODKIT_METRICS_TOKENS=token1,token2 in the environment.
    "METRICS_TOKENS": [os.environ.get("METRICS_TOKEN", "")],
}
