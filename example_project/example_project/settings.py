"""Settings for the example blog API, read from environment variables with safe development defaults.

Production needs ``DJANGO_SECRET_KEY`` and ``DJANGO_ALLOWED_HOSTS``; everything else has a default. ``DEBUG`` is
off unless ``DJANGO_DEBUG`` turns it on, and only then may the secret key be left out.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from django_prodkit.conf.environment import parse_bool, parse_csv
from django_prodkit.logging import configure_logging
from django_prodkit.settings import security_hardening, session_hardening

BASE_DIR = Path(__file__).resolve().parent.parent

#: Used only when DEBUG is on and no key was given, so a development checkout runs with no setup.
DEV_SECRET_KEY = "django-insecure-example-project-development-only"  # noqa: S105


def env_bool(name: str, default: bool) -> bool:
    """A boolean environment variable, strictly parsed ("maybe" is an error naming the variable)."""
    raw = os.environ.get(name)
    return default if raw is None else parse_bool(name, raw)


def env_dimensions(name: str) -> dict[str, str]:
    """``Name=value`` pairs separated by commas; an item without ``=`` is an error naming the variable."""
    dimensions = {}
    for item in parse_csv(name, os.environ.get(name, "")):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not (sep and key and value):
            raise ImproperlyConfigured(f"Environment variable {name}: {item!r} is not Name=value.")
        dimensions[key] = value
    return dimensions


def env_int(name: str, default: int) -> int:
    """An integer environment variable; a non-integer is an error naming the variable."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"Environment variable {name}={raw!r} is not an integer.") from None


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = DEV_SECRET_KEY

ALLOWED_HOSTS = parse_csv("DJANGO_ALLOWED_HOSTS", os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1"))
CSRF_TRUSTED_ORIGINS = parse_csv("DJANGO_CSRF_TRUSTED_ORIGINS", os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", ""))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "django_prodkit",
    "blog",
]

# The request id first so every response and log line has it, then the health checks (they answer load-balancer
# probes by IP before host validation), metrics and tracing around everything else, the access log last.
MIDDLEWARE = [
    "django_prodkit.middleware.RequestIDMiddleware",
    "django_prodkit.middleware.AccessLogMiddleware",
    "django_prodkit.middleware.HealthCheckMiddleware",
    "django_prodkit.middleware.MetricsMiddleware",
    "django_prodkit.middleware.TracingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"
ASGI_APPLICATION = "example_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    ),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
# Hashed file names let whitenoise (and CloudFront in front of it) cache static files for a year.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "blog.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "blog.pagination.BlogPagination",
    "PAGE_SIZE": 20,
    # Token and registration requests per client address (the cache is per process; use a shared cache such as
    # Redis for an exact limit across workers and instances).
    "DEFAULT_THROTTLE_RATES": {"auth": os.environ.get("AUTH_THROTTLE_RATE", "20/minute")},
    # How many proxies append to X-Forwarded-For in front of the app; 0 trusts only the socket's peer address.
    "NUM_PROXIES": env_int("DJANGO_NUM_PROXIES", 0),
}

SERVICE_NAME = os.environ.get("SERVICE_NAME", "blog-api")
# ENABLE_OTEL (OpenTelemetry over OTLP, configured by the standard OTEL_* variables), ENABLE_XRAY (the X-Ray
# daemon) and ENABLE_CLOUDWATCH_METRICS are read by django-prodkit itself; all are off by default.
PRODKIT = {
    "SERVICE_NAME": SERVICE_NAME,
    "SERVICE_VERSION": os.environ.get("SERVICE_VERSION", ""),
    # Without a collector beside the app (App Runner), spans go straight to X-Ray's OTLP endpoint, SigV4-signed
    # with the instance role; with a collector, leave this off and set OTEL_EXPORTER_OTLP_ENDPOINT.
    "OTEL": {"AWS_SIGV4": env_bool("OTEL_AWS_SIGV4", False)},
    # Embedded Metric Format lines on stdout: App Runner and ECS's awslogs driver ship them to CloudWatch Logs,
    # which turns them into metrics without any API call. The namespace matches the instance role's policy.
    "CLOUDWATCH": {
        "MODE": os.environ.get("CLOUDWATCH_MODE", "emf"),
        "NAMESPACE": os.environ.get("CLOUDWATCH_NAMESPACE", SERVICE_NAME),
        # Extra dimensions on every metric, "Environment=production,Team=blog"; the Terraform's alarms name the
        # same ones (variable cloudwatch_dimensions feeds both).
        "DIMENSIONS": env_dimensions("CLOUDWATCH_DIMENSIONS"),
    },
    # What "working" means, and what pages: `manage.py prodkit_monitoring prometheus|grafana|cloudwatch` turns these
    # into alerts and a dashboard; terraform/objectives.json is the CloudWatch output (docs/objectives.md).
    "OBJECTIVES": [
        {"NAME": "availability", "KIND": "availability", "TARGET": 99.9},
        {"NAME": "latency", "KIND": "latency", "TARGET": 99, "THRESHOLD_MS": 350},
    ],
}

# Celery: a worker on Redis when CELERY_BROKER_URL is set; without it (the demo, the tests) tasks run inline in
# the request that sends them. Either way their log lines carry that request's id (see docs/background-tasks.md).
CELERY_TASK_ALWAYS_EAGER = not os.environ.get("CELERY_BROKER_URL")
# Eager tasks need no broker; the in-memory one keeps Celery from looking for one on localhost.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "memory://"
CELERY_TASK_EAGER_PROPAGATES = True
# Our LOGGING stays in charge of the worker's output (start it with --loglevel INFO).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

LOGGING = configure_logging(
    fmt=os.environ.get("LOG_FORMAT", "console" if DEBUG else "json"),
    level=os.environ.get("LOG_LEVEL", "INFO"),
)

# Production is HTTPS only. DJANGO_HTTPS=false is for plain HTTP on a developer's machine (`make demo`, runserver):
# no redirect to https, no HSTS, cookies without Secure. It defaults to off only in DEBUG.
HTTPS = env_bool("DJANGO_HTTPS", not DEBUG)
# Behind App Runner, an ALB or CloudFront, TLS ends at the proxy; say so only when it is true (see docs/security.md).
BEHIND_TLS_PROXY = env_bool("DJANGO_BEHIND_TLS_PROXY", False)
globals().update(
    session_hardening() if HTTPS else session_hardening(SESSION_COOKIE_SECURE=False, CSRF_COOKIE_SECURE=False)
)
globals().update(
    security_hardening(behind_proxy=BEHIND_TLS_PROXY, SECURE_HSTS_SECONDS=env_int("DJANGO_HSTS_SECONDS", 3600))
    if HTTPS
    else security_hardening(behind_proxy=BEHIND_TLS_PROXY, SECURE_SSL_REDIRECT=False, SECURE_HSTS_SECONDS=0)
)
# HSTS includeSubDomains and preload stay off: the API is served from a host whose parent domain it does not own
# (*.cloudfront.net, *.awsapprunner.com). Django's deploy check asks for both; the decision is made, so silence it.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
