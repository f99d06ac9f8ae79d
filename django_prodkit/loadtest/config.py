"""What a load test does: the validated configuration shared by the engine, the reports and the CLI."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import django_prodkit

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_PATH = "/api/v1/posts/"
DEFAULT_TIMEOUT = 10.0
USER_AGENT = f"django-prodkit-loadtest/{django_prodkit.__version__}"
SCHEMES = {"http": 80, "https": 443}
# RFC 9110 token characters: what a method or a header name may consist of.
TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
MAX_HEADER_VALUE = 8192


class ConfigError(ValueError):
    """A load-test option is invalid; the message names the option."""


@dataclass(frozen=True)
class Target:
    """The server under test, parsed from a base URL."""

    scheme: str
    host: str
    port: int
    base_path: str

    @property
    def tls(self) -> bool:
        """Whether connections use TLS."""
        return self.scheme == "https"

    @property
    def host_header(self) -> str:
        """The Host header value: the port only when it is not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if SCHEMES[self.scheme] == self.port else f"{host}:{self.port}"

    def url(self, path: str = "") -> str:
        """The absolute URL of a path on this target."""
        return f"{self.scheme}://{self.host_header}{self.base_path}{path}"


@dataclass(frozen=True)
class LoadTestConfig:
    """A complete, validated description of one load test."""

    target: Target
    users: int
    requests: int | None = None
    duration: float | None = None
    rate: float | None = None
    paths: tuple[str, ...] = (DEFAULT_PATH,)
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    timeout: float = DEFAULT_TIMEOUT
    warmup: int = 0
    expect_status: frozenset[int] = field(default_factory=frozenset)
    insecure: bool = False

    @property
    def total_requests(self) -> int | None:
        """How many measured requests the run sends, or None when only a duration bounds it."""
        return None if self.requests is None else self.users * self.requests

    def is_success(self, status: int) -> bool:
        """Whether a response status counts as a success."""
        if self.expect_status:
            return status in self.expect_status
        return 200 <= status < 400


def parse_url(url: str) -> Target:
    """Parse and check a base URL such as ``https://api.example.com:8443``."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigError(f"--url {url!r}: the URL needs an http:// or https:// scheme")
    if not parts.hostname:
        raise ConfigError(f"--url {url!r}: the URL has no host")
    if parts.query or parts.fragment:
        raise ConfigError(f"--url {url!r}: give the query string in --path, not in the base URL")
    try:
        port = parts.port or SCHEMES[parts.scheme]
    except ValueError as exc:
        raise ConfigError(f"--url {url!r}: {exc}") from None
    return Target(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


def parse_header(text: str) -> tuple[str, str]:
    """Parse a ``"Name: value"`` header option."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not TOKEN_RE.match(name):
        raise ConfigError(f"--header {text!r}: expected 'Name: value'")
    if "\r" in value or "\n" in value or len(value) > MAX_HEADER_VALUE:
        raise ConfigError(f"--header {name!r}: the value must be one line of at most {MAX_HEADER_VALUE} characters")
    return name, value


def validate(config: LoadTestConfig) -> LoadTestConfig:
    """Check the numbers and combinations of a configuration; return it unchanged or raise ConfigError."""
    if config.users < 1:
        raise ConfigError(f"USERS must be at least 1, got {config.users}")
    if config.requests is None and config.duration is None:
        raise ConfigError("give REQUESTS (per user) or --duration SECONDS")
    if config.requests is not None and config.requests < 1:
        raise ConfigError(f"REQUESTS must be at least 1, got {config.requests}")
    if config.duration is not None and not config.duration > 0:
        raise ConfigError(f"--duration must be positive, got {config.duration}")
    if config.rate is not None and not config.rate > 0:
        raise ConfigError(f"--rate must be positive, got {config.rate}")
    if not config.timeout > 0:
        raise ConfigError(f"--timeout must be positive, got {config.timeout}")
    if config.warmup < 0:
        raise ConfigError(f"--warmup must be 0 or more, got {config.warmup}")
    if not TOKEN_RE.match(config.method):
        raise ConfigError(f"--method {config.method!r} is not a valid HTTP method")
    if not config.paths:
        raise ConfigError("give at least one --path")
    for path in config.paths:
        if not path.startswith("/") or any(ch in path for ch in " \r\n"):
            raise ConfigError(f"--path {path!r}: a path starts with '/' and contains no spaces")
    bad_status = sorted(s for s in config.expect_status if not 100 <= s <= 599)
    if bad_status:
        raise ConfigError(f"--expect-status {bad_status[0]}: a status code is between 100 and 599")
    return config
