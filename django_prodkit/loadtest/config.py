"""What a load test does: the validated configuration shared by the engine, the reports and the CLI."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import django_prodkit
from django_prodkit.loadtest.share import Share

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_PATH = "/"
DEFAULT_METHOD = "GET"
DEFAULT_TIMEOUT = 10.0
USER_AGENT = f"django-prodkit-loadtest/{django_prodkit.__version__}"
SCHEMES = {"http": 80, "https": 443}
# RFC 9110 token characters: what a method or a header name may consist of. Used with fullmatch: "$" would
# also match before a trailing newline.
TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A request target: no whitespace, no control characters, no DEL.
PATH_RE = re.compile(r"/[^\x00-\x20\x7f]*")
MAX_HEADER_VALUE = 8192
# By default only a 2xx is a success: a redirect means the page under test was not reached (see "What counts").
SUCCESS_RANGE = frozenset(range(200, 300))
REDIRECT_RANGE = range(300, 400)
# Upper bounds that keep every derived figure finite: a week of seconds, a million users or requests per second.
MAX_SECONDS = 7 * 24 * 3600.0
MAX_USERS = 1_000_000
MAX_RATE = 1_000_000.0
MAX_REQUESTS = 1_000_000_000
RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


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
class RequestSpec:
    """One kind of request of the mix: what is sent, how often relative to the others, what counts as success."""

    path: str
    name: str = ""
    method: str = DEFAULT_METHOD
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    weight: float = 1.0
    expect_status: frozenset[int] = field(default_factory=frozenset)

    @property
    def label(self) -> str:
        """The name reports use: the given name, else the method and path."""
        return self.name or (self.path if self.method == DEFAULT_METHOD else f"{self.method} {self.path}")

    def is_success(self, status: int) -> bool:
        """Whether a response status counts as a success for this request."""
        return status in (self.expect_status or SUCCESS_RANGE)


@dataclass(frozen=True)
class Stage:
    """Ramp linearly to ``target`` (users, or requests per second in an open loop) over ``duration`` seconds."""

    duration: float
    target: float


@dataclass(frozen=True)
class LoadTestConfig:
    """A complete, validated description of one load test (or of one share of it)."""

    target: Target
    users: int
    requests: int | None = None
    duration: float | None = None
    rate: float | None = None
    specs: tuple[RequestSpec, ...] = (RequestSpec(DEFAULT_PATH),)
    timeout: float = DEFAULT_TIMEOUT
    warmup: int = 0
    insecure: bool = False
    stages: tuple[Stage, ...] = ()
    share: Share = field(default_factory=Share)
    start_at: float | None = None
    given_run_id: str | None = None

    @property
    def paths(self) -> tuple[str, ...]:
        """The paths of the request mix."""
        return tuple(spec.path for spec in self.specs)

    @property
    def open_loop(self) -> bool:
        """Requests start on a schedule (``--rate``) rather than when the previous one is answered."""
        return self.rate is not None

    @property
    def run_duration(self) -> float | None:
        """How long the measured phase runs when time bounds it: the stages' total, else ``--duration``."""
        return sum(stage.duration for stage in self.stages) if self.stages else self.duration

    @property
    def total_requests(self) -> int | None:
        """How many measured requests the whole run sends, or None when only time bounds it."""
        return None if self.requests is None or self.stages else self.users * self.requests

    @property
    def peak_users(self) -> int:
        """The users (connections) the run needs at most: stages of a closed loop may ramp beyond ``users``."""
        if self.open_loop or not self.stages:
            return self.users
        return max(self.users, *(math.ceil(stage.target) for stage in self.stages))

    @property
    def share_requests(self) -> int | None:
        """How many measured requests this share sends: its users' (closed loop) or its stripe of the schedule."""
        total = self.total_requests
        if total is None:
            return None
        return self.share.count(total) if self.open_loop else self.share.count(self.users) * (self.requests or 0)

    @property
    def share_fraction(self) -> float:
        """The part of the whole run's load this share makes: its users of all (closed loop) or its stripe of the
        schedule (open loop)."""
        if self.share.modulus == 1:
            return 1.0
        if self.open_loop:
            return 1.0 / self.share.modulus
        return self.share.count(self.peak_users) / self.peak_users

    def deadline(self, grace: float) -> float:
        """Seconds after which the run ends whatever happens: its duration or requests x timeout, plus a grace."""
        bounds = []
        if self.run_duration is not None:
            bounds.append(self.run_duration + self.timeout)
        if self.requests is not None:
            if self.open_loop and self.rate is not None:
                bounds.append(self.users * self.requests / self.rate + self.timeout)
            else:
                bounds.append(self.requests * self.timeout)
        warmup = -(-self.warmup // max(self.users, 1)) * self.timeout
        return min(bounds) + warmup + grace

    def identity(self) -> dict[str, Any]:
        """What makes two reports shares of the same run: everything but the share itself that a report may show.

        Header values and bodies are left out (they may hold credentials, and a hash of a short secret is
        brute-forced offline in seconds); only the header names and the body's length count. Runs that differ
        only in those are told apart by ``--run-id``.
        """
        return {
            "url": self.target.url(),
            "requests": [
                [s.label, s.method, s.path, s.weight, sorted(s.expect_status), [n for n, _ in s.headers], len(s.body)]
                for s in self.specs
            ],
            "users": self.users,
            "requests_per_user": self.requests,
            "duration": self.duration,
            "rate": self.rate,
            "stages": [[stage.duration, stage.target] for stage in self.stages],
            "timeout": self.timeout,
            "warmup": self.warmup,
            "start_at": self.start_at,
            "segments": self.share.segments,
        }

    @property
    def run_id(self) -> str:
        """``--run-id`` when given, else a short hash of :meth:`identity`."""
        if self.given_run_id is not None:
            return self.given_run_id
        text = json.dumps(self.identity(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_url(url: str) -> Target:
    """Parse and check a base URL such as ``https://api.example.com:8443``."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigError(f"--url {url!r}: the URL needs an http:// or https:// scheme")
    if not parts.hostname:
        raise ConfigError(f"--url {url!r}: the URL has no host")
    if parts.query or parts.fragment:
        raise ConfigError(f"--url {url!r}: give the query string in --path, not in the base URL")
    if not PATH_RE.fullmatch(parts.path or "/"):
        raise ConfigError(f"--url {url!r}: the path contains spaces or control characters")
    try:
        port = parts.port or SCHEMES[parts.scheme]
    except ValueError as exc:
        raise ConfigError(f"--url {url!r}: {exc}") from None
    return Target(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


def parse_header(text: str, option: str = "--header") -> tuple[str, str]:
    """Parse a ``"Name: value"`` header option."""
    name, sep, value = text.partition(":")
    name, value = name.strip(" \t"), value.strip(" \t")
    if not sep or not TOKEN_RE.fullmatch(name):
        raise ConfigError(f"{option} {text!r}: expected 'Name: value'")
    check_header_value(name, value, option)
    return name, value


def check_header_value(name: str, value: str, option: str) -> None:
    """A header value is one line of printable characters (tabs allowed) of bounded length."""
    if any((ord(ch) < 32 and ch != "\t") or ord(ch) == 127 for ch in value) or len(value) > MAX_HEADER_VALUE:
        raise ConfigError(f"{option} {name!r}: the value must be one line of at most {MAX_HEADER_VALUE} characters")


def check_method(method: str, option: str = "--method") -> None:
    """A method is an RFC 9110 token."""
    if not TOKEN_RE.fullmatch(method):
        raise ConfigError(f"{option} {method!r} is not a valid HTTP method")


def check_path(path: str, option: str = "--path") -> None:
    """A path starts with '/' and has no whitespace or control characters."""
    if not PATH_RE.fullmatch(path):
        raise ConfigError(f"{option} {path!r}: a path starts with '/' and contains no spaces or control characters")


def check_number(value: float, option: str, low: float, high: float, *, positive: bool = False) -> None:
    """A finite number in ``[low, high]`` (``(0, high]`` when ``positive``): ConfigError naming the option."""
    finite = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not finite or value > high or value < low or (positive and not value > 0):
        bound = f"a positive number of at most {high:g}" if positive else f"a number between {low:g} and {high:g}"
        raise ConfigError(f"{option} must be {bound}, got {value}")


def validate(config: LoadTestConfig) -> LoadTestConfig:
    """Check the numbers and combinations of a configuration; return it unchanged or raise ConfigError."""
    if config.users < 1:
        raise ConfigError(f"USERS must be at least 1, got {config.users}")
    check_number(config.users, "USERS", 1, MAX_USERS)
    if config.requests is None and config.duration is None and not config.stages:
        raise ConfigError("give REQUESTS (per user), --duration SECONDS or stages")
    if config.requests is not None and config.requests < 1:
        raise ConfigError(f"REQUESTS must be at least 1, got {config.requests}")
    if config.requests is not None:
        check_number(config.requests, "REQUESTS", 1, MAX_REQUESTS)
    if config.duration is not None:
        check_number(config.duration, "--duration", 0, MAX_SECONDS, positive=True)
    if config.rate is not None:
        check_number(config.rate, "--rate", 0, MAX_RATE, positive=True)
    check_number(config.timeout, "--timeout", 0, MAX_SECONDS, positive=True)
    if config.warmup < 0:
        raise ConfigError(f"--warmup must be 0 or more, got {config.warmup}")
    check_number(config.warmup, "--warmup", 0, MAX_REQUESTS)
    for stage in config.stages:
        check_number(stage.duration, "a stage's duration", 0, MAX_SECONDS, positive=True)
        check_number(stage.target, "a stage's target", 0, MAX_RATE if config.open_loop else MAX_USERS)
    if config.start_at is not None:
        check_number(config.start_at, "--start-at", 0, 1e11)
    if config.given_run_id is not None and not RUN_ID_RE.fullmatch(config.given_run_id):
        raise ConfigError(
            f"--run-id {config.given_run_id!r}: up to 64 letters, digits and . _ : - (starting with a letter or digit)"
        )
    if not config.specs:
        raise ConfigError("give at least one --path")
    for spec in config.specs:
        check_method(spec.method)
        check_path(spec.path)
        if not spec.weight > 0:
            raise ConfigError(f"weight of {spec.label!r} must be positive, got {spec.weight}")
        bad_status = sorted(s for s in spec.expect_status if not 100 <= s <= 599)
        if bad_status:
            raise ConfigError(f"--expect-status {bad_status[0]}: a status code is between 100 and 599")
    return config
