"""JSON schema of the App Runner configuration file (``apprunner.yaml``), version 1.0.

Written from AWS's "App Runner configuration file reference": top-level ``version`` and ``runtime`` are required;
``build.commands.build`` is required when ``build`` is given (``pre-build`` and ``post-build`` optional) and
``build.env`` is a list of name/value pairs; ``run`` has ``runtime-version``, ``pre-run`` (revised builds such as
python311 only), ``command``, ``network`` (``port``, ``env``), ``env`` (name/value) and ``secrets``
(name/value-from, an ARN of a Secrets Manager secret or an SSM parameter). No other keys are accepted.
"""

from __future__ import annotations

from typing import Any

#: Managed runtimes App Runner has offered for source-code services.
RUNTIMES = [
    "python3",
    "python311",
    "nodejs12",
    "nodejs14",
    "nodejs16",
    "nodejs18",
    "corretto8",
    "corretto11",
    "go1",
    "dotnet6",
    "php81",
    "ruby31",
]

#: Runtimes with the revised build, the only ones that accept ``run.pre-run``.
REVISED_BUILD_RUNTIMES = ["python311", "nodejs18"]

_COMMANDS: dict[str, Any] = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}

_ENV: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "value"],
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
            "value": {"type": "string"},
        },
    },
}

_SECRETS: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "value-from"],
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
            "value-from": {"type": "string", "pattern": r"^arn:aws[a-z-]*:(secretsmanager|ssm):[a-z0-9-]+:\d{12}:"},
        },
    },
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "App Runner configuration file",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "runtime"],
    "properties": {
        "version": {"enum": [1.0, "1.0"]},
        "runtime": {"enum": RUNTIMES},
        "build": {
            "type": "object",
            "additionalProperties": False,
            "required": ["commands"],
            "properties": {
                "commands": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["build"],
                    "properties": {"pre-build": _COMMANDS, "build": _COMMANDS, "post-build": _COMMANDS},
                },
                "env": _ENV,
            },
        },
        "run": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "runtime-version": {"type": "string", "pattern": r"^\d+(\.\d+){0,2}$"},
                "pre-run": _COMMANDS,
                "command": {"type": "string", "minLength": 1},
                "network": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                        "env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                    },
                },
                "env": _ENV,
                "secrets": _SECRETS,
            },
        },
    },
    # pre-run exists only with the revised build.
    "if": {"required": ["run"], "properties": {"run": {"required": ["pre-run"]}}},
    "then": {"properties": {"runtime": {"enum": REVISED_BUILD_RUNTIMES}}},
}
