"""System checks for tracing (``prodkit.E030``-``E035``, ``W030``-``W032``); aws-xray-sdk is imported only when on."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from django_prodkit.conf import get_config
from django_prodkit.stack import index_of
from django_prodkit.tracing.backend import XRAY_EXTRA, xray_installed
from django_prodkit.tracing.emitter import DAEMON_ADDRESS_ENV, daemon_address_from_env

#: The tracing middleware under its name and its older alias.
TRACING_MIDDLEWARE = ("django_prodkit.middleware.TracingMiddleware", "django_prodkit.middleware.XRayMiddleware")

#: The tracing check ids with one-line summaries (merged into ``django_prodkit.checks.CHECK_IDS``).
CHECK_IDS: dict[str, str] = {
    "prodkit.E030": "X-Ray tracing is on but aws-xray-sdk is not installed.",
    "prodkit.E031": "XRAY.SAMPLING_RULES cannot be read or is not a valid rules document.",
    "prodkit.E032": "XRAY.CONTEXT_MISSING is not one of aws-xray-sdk's strategies.",
    "prodkit.E033": "XRAY.PATCH_MODULES names a module aws-xray-sdk cannot patch.",
    "prodkit.E034": "AWS_XRAY_DAEMON_ADDRESS is not a daemon address.",
    "prodkit.E035": "XRAY.PLUGINS names an unknown aws-xray-sdk plugin.",
    "prodkit.W030": "X-Ray tracing is on but TracingMiddleware is not in MIDDLEWARE.",
    "prodkit.W031": "XRAY.PATCH_MODULES names a module that is not installed.",
    "prodkit.W032": "X-Ray tracing is on but AWS_XRAY_SDK_ENABLED turns aws-xray-sdk off.",
}

#: aws-xray-sdk's context-missing strategies; ``IGNORE_ERROR`` is the silent one.
CONTEXT_MISSING_CHOICES = ("IGNORE_ERROR", "LOG_ERROR", "RUNTIME_ERROR")

#: What aws-xray-sdk 2.x can patch (its ``patcher.SUPPORTED_MODULES`` plus the names it maps onto them).
PATCHABLE_MODULES = {
    "aiobotocore": "aiobotocore",
    "aioboto3": "aiobotocore",
    "botocore": "botocore",
    "boto3": "botocore",
    "pynamodb": "pynamodb",
    "requests": "requests",
    "sqlite3": "sqlite3",
    "mysql": "mysql.connector",
    "httplib": "http.client",
    "pymongo": "pymongo",
    "pymysql": "pymysql",
    "psycopg2": "psycopg2",
    "psycopg": "psycopg",
    "pg8000": "pg8000",
    "sqlalchemy_core": "sqlalchemy",
    "httpx": "httpx",
}

#: aws-xray-sdk's plugin names (case does not matter to the SDK).
PLUGINS = ("EC2Plugin", "ECSPlugin", "ElasticBeanstalkPlugin")

#: The environment variable that turns the whole SDK into a no-op.
SDK_ENABLED_ENV = "AWS_XRAY_SDK_ENABLED"


def _module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _value_errors(xray: dict[str, Any]) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    if xray["CONTEXT_MISSING"] not in CONTEXT_MISSING_CHOICES:
        messages.append(
            checks.Error(
                f"PRODKIT['XRAY']['CONTEXT_MISSING'] = {xray['CONTEXT_MISSING']!r} is not a strategy.",
                hint=f"Use one of {', '.join(CONTEXT_MISSING_CHOICES)} (IGNORE_ERROR is silent).",
                id="prodkit.E032",
            )
        )
    unknown = [name for name in xray["PATCH_MODULES"] if name not in PATCHABLE_MODULES]
    if unknown:
        messages.append(
            checks.Error(
                f"PRODKIT['XRAY']['PATCH_MODULES'] lists modules aws-xray-sdk cannot patch: {', '.join(unknown)}.",
                hint=f"Use names from: {', '.join(sorted(PATCHABLE_MODULES))}.",
                id="prodkit.E033",
            )
        )
    known = {plugin.lower() for plugin in PLUGINS}
    bad_plugins = [name for name in xray["PLUGINS"] if name.lower() not in known]
    if bad_plugins:
        messages.append(
            checks.Error(
                f"PRODKIT['XRAY']['PLUGINS'] has unknown plugins: {', '.join(bad_plugins)}.",
                hint=f"Use names from: {', '.join(PLUGINS)}.",
                id="prodkit.E035",
            )
        )
    return messages


def _enabled_errors(xray: dict[str, Any]) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    try:
        daemon_address_from_env()
    except ValueError as exc:
        messages.append(
            checks.Error(
                str(exc),
                hint=f"Set {DAEMON_ADDRESS_ENV} to host:port, or 'tcp:host:port udp:host:port'.",
                id="prodkit.E034",
            )
        )
    rules = xray["SAMPLING_RULES"]
    # aws-xray-sdk cannot even be imported with a malformed daemon address, so the rules wait for E034's fix.
    if rules and not messages:
        try:
            from django_prodkit.tracing.xray import load_sampling_rules

            load_sampling_rules(rules)
        except Exception as exc:
            messages.append(
                checks.Error(
                    f"PRODKIT['XRAY']['SAMPLING_RULES'] cannot be used: {exc}",
                    hint="Give a dict or the path of a JSON file with 'version' (2) and a 'default' rule.",
                    id="prodkit.E031",
                )
            )
    missing = [
        name
        for name in xray["PATCH_MODULES"]
        if name in PATCHABLE_MODULES and not _module_available(PATCHABLE_MODULES[name])
    ]
    if missing:
        messages.append(
            checks.Warning(
                f"PRODKIT['XRAY']['PATCH_MODULES'] lists modules that are not installed: {', '.join(missing)}.",
                hint="Install them or remove them from PATCH_MODULES; they are skipped.",
                id="prodkit.W031",
            )
        )
    if os.environ.get(SDK_ENABLED_ENV, "").strip().lower() in ("n", "no", "f", "false", "off", "0"):
        messages.append(
            checks.Warning(
                f"X-Ray tracing is on but {SDK_ENABLED_ENV} turns aws-xray-sdk off: no segment is recorded.",
                hint=f"Unset {SDK_ENABLED_ENV}, or turn tracing off with ENABLE_XRAY=false.",
                id="prodkit.W032",
            )
        )
    return messages


def check_tracing(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Tracing settings, the daemon address, the sampling rules, and aws-xray-sdk when tracing is on."""
    try:
        config = get_config()
    except ImproperlyConfigured:
        return []  # prodkit.E002/E003 report it
    xray = config["XRAY"]
    messages = _value_errors(xray)
    if not xray["ENABLED"]:
        return messages
    if not xray_installed():
        messages.append(
            checks.Error(
                "X-Ray tracing is on (PRODKIT['XRAY']['ENABLED'] or ENABLE_XRAY) but aws-xray-sdk is not installed.",
                hint=f"Install the extra: {XRAY_EXTRA}",
                id="prodkit.E030",
            )
        )
        return messages
    if index_of(TRACING_MIDDLEWARE[0]) is None:
        messages.append(
            checks.Warning(
                f"X-Ray tracing is on but {TRACING_MIDDLEWARE[0]} is not in MIDDLEWARE: requests are not traced.",
                hint="Add it after RequestIDMiddleware, HealthCheckMiddleware and MetricsMiddleware, above Django's.",
                id="prodkit.W030",
            )
        )
    messages.extend(_enabled_errors(xray))
    return messages


def register() -> None:
    """Register the tracing checks (called from :func:`django_prodkit.checks.register_all`)."""
    checks.register(check_tracing, "prodkit")
