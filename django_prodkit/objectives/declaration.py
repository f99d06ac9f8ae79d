"""The service level objectives declared in ``PRODKIT["OBJECTIVES"]``: parsed, validated, and their burn-rate math."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

AVAILABILITY = "availability"
LATENCY = "latency"
KINDS = (AVAILABILITY, LATENCY)
PAGE = "page"
TICKET = "ticket"
WINDOW_DAYS = (28, 30)

#: The keys one objective may have; ``NAME``, ``KIND`` and ``TARGET`` are required.
OBJECTIVE_KEYS = frozenset({"NAME", "KIND", "TARGET", "THRESHOLD_MS", "ROUTES", "METHODS", "ERRORS", "DESCRIPTION"})
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_ERROR_CLASS = re.compile(r"[45]xx|[45][0-9][0-9]")
_METHOD = re.compile(r"[A-Z]{1,16}")
_MATCHER = r'\s*[A-Za-z_][A-Za-z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*'
_SELECTOR = re.compile(rf"(?:{_MATCHER}(?:,{_MATCHER})*,?\s*)?")
#: Labels the generated queries set themselves; a selector naming them would contradict the objective.
RESERVED_LABELS = frozenset({"status", "route", "method", "le"})

#: Window lengths in seconds, by the Prometheus duration that names them.
WINDOW_SECONDS = {"5m": 300, "30m": 1800, "1h": 3600, "2h": 7200, "6h": 21600, "1d": 86400, "3d": 259200}


@dataclass(frozen=True)
class WindowPair:
    """One multiwindow burn-rate condition of the SRE workbook: ``budget_share`` of the budget spent in ``long``."""

    severity: str
    long: str
    short: str
    budget_share: float

    def factor(self, window_days: int) -> float:
        """The burn rate that spends ``budget_share`` of a ``window_days`` budget in the long window."""
        return round(self.budget_share * window_days * 86400 / WINDOW_SECONDS[self.long], 4)


#: The Google SRE workbook's recommendation (chapter 5, table 5-8): 2 % in 1 h and 5 % in 6 h page, 10 % in a day
#: and 10 % in three days open a ticket; the short window (1/12 of the long one) makes the alert reset quickly.
WINDOW_PAIRS = (
    WindowPair(PAGE, "1h", "5m", 0.02),
    WindowPair(PAGE, "6h", "30m", 0.05),
    WindowPair(TICKET, "1d", "2h", 0.10),
    WindowPair(TICKET, "3d", "6h", 0.10),
)
SEVERITIES = (PAGE, TICKET)


@dataclass(frozen=True)
class Objective:
    """One objective: the share of requests (to ``routes``, all when empty) that must be good over the window."""

    name: str
    kind: str
    target: float
    threshold_ms: float | None = None
    #: The histogram bucket edge, in seconds, that stands for ``threshold_ms`` (latency objectives).
    edge: float | None = None
    routes: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    errors: tuple[str, ...] = ("5xx",)
    description: str = ""

    @property
    def budget(self) -> float:
        """The error budget: the share of requests allowed to be bad (0.001 for 99.9 %)."""
        return round(1.0 - self.target / 100.0, 12)

    def good_means(self) -> str:
        """What a good request is, in words."""
        if self.kind == LATENCY:
            assert self.edge is not None
            return f"answer within {self.edge * 1000:g} ms"
        return f"answer without {' or '.join(self.errors)}"

    def scope(self) -> str:
        """Which requests count, in words."""
        methods = "/".join(self.methods) + " " if self.methods else ""
        return f"{methods}requests to {', '.join(self.routes)}" if self.routes else f"{methods}requests"

    def sentence(self, window_days: int) -> str:
        """The objective in one sentence."""
        return f"{self.target:g} % of {self.scope()} {self.good_means()}, over {window_days} days"


@dataclass(frozen=True)
class Declaration:
    """Every objective with the settings shared by their alerts."""

    objectives: tuple[Objective, ...]
    service: str
    window_days: int = 28
    min_requests: int = 100
    selector: str = ""
    runbook_url: str = ""

    def runbook(self, objective: Objective, severity: str) -> str:
        """The runbook link for one alert (an anchor on the docs page)."""
        return f"{self.runbook_url}#slo-{objective.kind}-{severity}" if self.runbook_url else ""


@dataclass(frozen=True)
class Problem:
    """A declaration problem, reported as a system check and by the command."""

    id: str
    message: str
    hint: str

    @property
    def is_error(self) -> bool:
        """Errors stop the command; warnings do not."""
        return ".E" in self.id


def bucket_edge(threshold_ms: float, buckets: Sequence[float]) -> float | None:
    """The largest bucket edge (s) at or below the threshold: a request under it is surely under the threshold."""
    seconds = threshold_ms / 1000.0
    below = [b for b in buckets if b <= seconds * (1 + 1e-9)]
    return max(below) if below else None


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _objective_problems(entry: Mapping[str, Any], where: str) -> list[Problem]:
    problems: list[Problem] = []
    unknown = sorted(set(entry) - OBJECTIVE_KEYS)
    if unknown:
        problems.append(
            Problem("prodkit.E130", f"{where} has unknown keys {unknown}.", f"Use only {sorted(OBJECTIVE_KEYS)}.")
        )
    name = entry.get("NAME")
    if not (isinstance(name, str) and _NAME.fullmatch(name)):
        problems.append(
            Problem(
                "prodkit.E131",
                f"{where}['NAME'] = {name!r:.80} is not a name for an objective.",
                "Use lowercase letters, digits and hyphens, e.g. 'api-availability'; it becomes the slo label.",
            )
        )
    kind = entry.get("KIND")
    if kind not in KINDS:
        problems.append(
            Problem("prodkit.E132", f"{where}['KIND'] = {kind!r:.80} is not a kind of objective.", f"Use {KINDS}.")
        )
    target = entry.get("TARGET")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target < 100:
        problems.append(
            Problem(
                "prodkit.E133",
                f"{where}['TARGET'] = {target!r:.80} is not a percentage between 0 and 100.",
                "Give the percentage of good requests, e.g. 99.9 (100 leaves no error budget to alert on).",
            )
        )
    for key, pattern, example in (("ROUTES", None, "'/api/v1/items/<slug:slug>/'"), ("METHODS", _METHOD, "'GET'")):
        values = _strings(entry.get(key, []))
        if values is None or (pattern and not all(pattern.fullmatch(v) for v in values)):
            problems.append(
                Problem(
                    "prodkit.E134",
                    f"{where}['{key}'] = {entry.get(key)!r:.80} is not a list of {key.lower()}.",
                    f"Give a list like [{example}] (the route patterns the metrics report), or leave it out.",
                )
            )
    errors = _strings(entry.get("ERRORS", ["5xx"]))
    if kind == AVAILABILITY and (not errors or not all(_ERROR_CLASS.fullmatch(e) for e in errors)):
        problems.append(
            Problem(
                "prodkit.E135",
                f"{where}['ERRORS'] = {entry.get('ERRORS')!r:.80} is not a list of status classes or codes.",
                "Use e.g. ['5xx'] (the default) or ['5xx', '429']; 4xx are usually the client's mistake.",
            )
        )
    threshold = entry.get("THRESHOLD_MS")
    if kind == LATENCY and (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not (math.isfinite(threshold) and threshold > 0)
    ):
        problems.append(
            Problem(
                "prodkit.E136",
                f"{where}['THRESHOLD_MS'] = {threshold!r:.80}: a latency objective needs a positive threshold in ms.",
                "Give the response time a good request stays within, e.g. 300 (a METRICS_BUCKETS edge is best).",
            )
        )
    return problems


def _parse_objective(entry: Mapping[str, Any], buckets: Sequence[float], where: str) -> tuple[Objective, list[Problem]]:
    problems: list[Problem] = []
    # Validated by _objective_problems: a positive number for latency objectives.
    threshold = float(entry.get("THRESHOLD_MS") or 0.0)
    edge = None
    if entry["KIND"] == LATENCY:
        edge = bucket_edge(threshold, buckets)
        if edge is None:
            problems.append(
                Problem(
                    "prodkit.E136",
                    f"{where}['THRESHOLD_MS'] = {threshold!r} is below the lowest histogram bucket "
                    f"({buckets[0] * 1000:g} ms), so no request can count as fast enough.",
                    "Raise the threshold or add it to PRODKIT['METRICS_BUCKETS'] (in seconds).",
                )
            )
        elif not math.isclose(edge * 1000, threshold, rel_tol=1e-9):
            problems.append(
                Problem(
                    "prodkit.W130",
                    f"{where}['THRESHOLD_MS'] = {threshold!r} is not a histogram bucket edge; the objective counts "
                    f"requests within {edge * 1000:g} ms, the edge below it.",
                    f"Set THRESHOLD_MS to {edge * 1000:g}, or add {threshold / 1000:g} to PRODKIT['METRICS_BUCKETS'].",
                )
            )
    objective = Objective(
        name=entry["NAME"],
        kind=entry["KIND"],
        target=float(entry["TARGET"]),
        threshold_ms=threshold if entry["KIND"] == LATENCY else None,
        edge=edge,
        routes=tuple(entry.get("ROUTES", ())),
        methods=tuple(entry.get("METHODS", ())),
        errors=tuple(dict.fromkeys(entry.get("ERRORS", ["5xx"]))) if entry["KIND"] == AVAILABILITY else (),
        description=str(entry.get("DESCRIPTION", "")),
    )
    return objective, problems


def _shared_problems(config: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    if config["OBJECTIVES_WINDOW_DAYS"] not in WINDOW_DAYS:
        problems.append(
            Problem(
                "prodkit.E138",
                f"PRODKIT['OBJECTIVES_WINDOW_DAYS'] = {config['OBJECTIVES_WINDOW_DAYS']!r} is not 28 or 30.",
                "Use 28 (four whole weeks, every weekday counted alike) or 30 (the SRE workbook's month).",
            )
        )
    if config["OBJECTIVES_MIN_REQUESTS"] < 0:
        problems.append(
            Problem(
                "prodkit.E137",
                f"PRODKIT['OBJECTIVES_MIN_REQUESTS'] = {config['OBJECTIVES_MIN_REQUESTS']!r} is negative.",
                "Use the fewest requests in an alert's long window worth alerting on (default 100), or 0 for no guard.",
            )
        )
    selector = config["OBJECTIVES_SELECTOR"]
    labels = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", selector))
    if not _SELECTOR.fullmatch(selector) or labels & RESERVED_LABELS:
        problems.append(
            Problem(
                "prodkit.E139",
                f"PRODKIT['OBJECTIVES_SELECTOR'] = {selector!r:.120} is not a list of Prometheus label matchers "
                f"that leaves {sorted(RESERVED_LABELS)} alone.",
                'Use matchers like \'job="blog", env="production"\' that pick this service\'s series.',
            )
        )
    return problems


def declare(config: Mapping[str, Any], buckets: Sequence[float]) -> tuple[Declaration, list[Problem]]:
    """The declaration in ``config`` and everything wrong with it; objectives with errors are left out."""
    problems = _shared_problems(config)
    objectives: list[Objective] = []
    seen: set[str] = set()
    for index, entry in enumerate(config["OBJECTIVES"]):
        where = f"PRODKIT['OBJECTIVES'][{index}]"
        if not isinstance(entry, Mapping):
            problems.append(Problem("prodkit.E130", f"{where} is not a dict.", "Give each objective as a dict."))
            continue
        found = _objective_problems(entry, where)
        if not found and entry["NAME"] in seen:
            found.append(
                Problem("prodkit.E131", f"{where}['NAME'] = {entry['NAME']!r} is used twice.", "Give each a name.")
            )
        problems.extend(found)
        if found:
            continue
        seen.add(entry["NAME"])
        objective, more = _parse_objective(entry, buckets, where)
        problems.extend(more)
        if not any(p.is_error for p in more):
            objectives.append(objective)
    for objective in objectives:
        unreachable = [
            pair for pair in WINDOW_PAIRS if pair.factor(config["OBJECTIVES_WINDOW_DAYS"]) * objective.budget >= 1
        ]
        if unreachable:
            problems.append(
                Problem(
                    "prodkit.W131",
                    f"Objective {objective.name!r} allows {objective.budget:.1%} bad requests, so a burn rate of "
                    f"{unreachable[0].factor(config['OBJECTIVES_WINDOW_DAYS']):g}x would need more than every request "
                    f"to fail: its {unreachable[0].long} {unreachable[0].severity} alert can never fire.",
                    "Raise TARGET (e.g. 99 or above) so every alert can fire.",
                )
            )
    declaration = Declaration(
        objectives=tuple(objectives),
        service=config["SERVICE_NAME"],
        window_days=config["OBJECTIVES_WINDOW_DAYS"] if config["OBJECTIVES_WINDOW_DAYS"] in WINDOW_DAYS else 28,
        min_requests=max(0, config["OBJECTIVES_MIN_REQUESTS"]),
        selector=config["OBJECTIVES_SELECTOR"].strip().rstrip(","),
        runbook_url=config["OBJECTIVES_RUNBOOK_URL"],
    )
    return declaration, problems
