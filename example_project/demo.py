"""``make demo``: the example blog API under gunicorn, load-tested, with its metrics shown. Needs only python3 and pip.

Steps: create ``.venv-demo`` and install the library and the example into it; migrate and seed a fresh SQLite
database in a temporary directory; start gunicorn with several workers on a free port on 127.0.0.1; run
``manage.py loadtest`` against it with criteria a slow, shared machine still meets (every request succeeds, p99
under 2.5 s); print the report and the ``/api/v1/metrics/`` snapshot, and check that its ``request_count`` is
exactly the requests the load test sent plus the start-up health probe. The HTML and JSON reports stay in
``demo-reports/`` (git-ignored). The exit status is the verdict: 0 only when the load test passed and the counts
agree. The server is stopped by its PID whatever happens. The functions here are also used by the example's tests.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXAMPLE_DIR = Path(__file__).resolve().parent
REPO_DIR = EXAMPLE_DIR.parent
VENV_DIR = REPO_DIR / ".venv-demo"
#: Where the reports of the last run are kept (git-ignored).
REPORTS_DIR = REPO_DIR / "demo-reports"
HEALTH_PATH = "/api/v1/healthcheck/"
METRICS_PATH = "/api/v1/metrics/"
#: What the load test requests, in turn: the main read endpoints of the API.
LOAD_PATHS = (
    "/api/v1/posts/",
    "/api/v1/posts/?tag=django&ordering=-created_at",
    "/api/v1/posts/demo-post-1/",
    "/api/v1/posts/demo-post-1/comments/",
    "/api/v1/tags/",
    "/api/v1/posts/?search=gunicorn",
)
#: Exit status of ``manage.py loadtest`` when it ran but a pass/fail criterion failed.
LOADTEST_CRITERIA_FAILED = 3
#: The demo's pass/fail criteria: met by a loaded 2-core CI machine, missed by a broken or stalled server.
#: Every request must succeed; the slowest 1 % under 2.5 s; the average under 1 s; more than 5 requests a second.
SUCCESS_RATE = 100.0
P99_MS = 2500.0
AVG_MS = 1000.0
MIN_RPS = 5.0
#: Requests sent first and left out of the figures: each worker's first requests load code and open the database.
WARMUP = 20
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


def log(message: str) -> None:
    """One progress line of the demo, set apart from the tools' own output."""
    print(f"==> {message}", flush=True)


def venv_python(venv: Path) -> Path:
    """The interpreter of ``venv``."""
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(venv: Path = VENV_DIR) -> Path:
    """Create ``venv`` and install the library and the example; skipped when nothing they depend on changed."""
    python = venv_python(venv)
    inputs = [REPO_DIR / "pyproject.toml", EXAMPLE_DIR / "requirements.txt"]
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in inputs)).hexdigest()
    stamp = venv / ".prodkit-demo-installed"
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        log(f"reusing {venv.name} (dependencies unchanged)")
        return python
    log(f"creating {venv.name} and installing django-prodkit and the example (one minute the first time)")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{REPO_DIR}[aws,xray]", "-r", str(EXAMPLE_DIR / "requirements.txt")], check=True)
    stamp.write_text(digest)
    return python


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environment(workdir: Path, metrics_token: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the example in production mode, but on plain HTTP, with its state under ``workdir``."""
    env = dict(os.environ if base is None else base)
    for name in [key for key in env if key.startswith(("DJANGO_", "PRODKIT_", "GUNICORN_"))]:
        del env[name]
    static_root = workdir / "static"
    static_root.mkdir(exist_ok=True)
    # gunicorn's on_starting hook prepares it too, but manage.py commands run before the server and check it.
    (workdir / "prometheus").mkdir(exist_ok=True)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "example_project.settings",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_DEBUG": "false",
            "DJANGO_HTTPS": "false",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_STATIC_ROOT": str(static_root),
            "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus"),
            "PRODKIT_METRICS_TOKENS": metrics_token,
            "LOG_FORMAT": "json",
            "ENABLE_XRAY": "false",
            "ENABLE_CLOUDWATCH_METRICS": "false",
        }
    )
    env.pop("PYTHONDEVMODE", None)
    return env


MANAGE_TIMEOUT_S = 300


def manage(
    python: str | Path, args: Sequence[str], env: Mapping[str, str], *, check: bool = True, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` of the example with ``env``; a non-zero exit raises with the output unless ``check=False``."""
    # Bounded: the demo and the example's tests must never hang CI; every step takes seconds.
    kwargs.setdefault("timeout", MANAGE_TIMEOUT_S)
    result = subprocess.run([str(python), "manage.py", *args], cwd=EXAMPLE_DIR, env=dict(env), text=True, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} exited with {result.returncode}:\n{result.stdout or ''}")
    return result


def prepare_database(python: str | Path, env: Mapping[str, str], *, posts: int = 60, static: bool = True) -> None:
    """Migrate a fresh database, seed it and (unless ``static`` is false) collect the static files."""
    quiet = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
    manage(python, ["migrate", "--noinput", "-v", "0"], env, **quiet)
    seeded = manage(python, ["seed_blog", "--users", "5", "--posts", str(posts), "--comments", "3"], env, **quiet)
    print(seeded.stdout.strip(), flush=True)
    if static:
        manage(python, ["collectstatic", "--noinput", "-v", "0"], env, **quiet)


@dataclass
class Server:
    """A gunicorn master we started; ``url`` is its base URL and ``log_path`` holds its output."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def output(self) -> str:
        """Everything the server wrote so far."""
        return self.log_path.read_text(errors="replace")


def get(url: str, token: str | None = None, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """A GET to the server under test (always 127.0.0.1): status, headers, body."""
    request = urllib.request.Request(url)  # noqa: S310 (the URL is the local server this script started)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def wait_until_healthy(server: Server, timeout: float = STARTUP_TIMEOUT) -> None:
    """Poll the liveness endpoint until it answers 200; fail early if gunicorn exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {server.process.returncode}:\n{server.output()[-4000:]}")
        with contextlib.suppress(OSError):
            # Patient: a probe the client gives up on may still be answered, and counted, by a slow first worker.
            if get(server.url + HEALTH_PATH, timeout=10.0)[0] == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not become healthy in {timeout:.0f} s:\n{server.output()[-4000:]}")


def stop_server(server: Server) -> None:
    """Stop gunicorn by its PID: SIGTERM (a graceful shutdown of all workers), SIGKILL if it hangs."""
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_server(
    python: str | Path, env: Mapping[str, str], workdir: Path, *, workers: int = 4, extra: Sequence[str] = ()
) -> Iterator[Server]:
    """gunicorn with ``gunicorn.conf.py`` on a free port on 127.0.0.1, healthy on entry, stopped on exit."""
    port = free_port()
    log_path = workdir / "gunicorn.log"
    command = [
        str(python), "-m", "gunicorn", "--config", "gunicorn.conf.py",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), *extra,
    ]  # fmt: skip
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, cwd=EXAMPLE_DIR, env=dict(env), stdout=log_file, stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_until_healthy(server)
        yield server
    finally:
        stop_server(server)


def metrics_snapshot(server: Server, token: str) -> dict[str, Any]:
    """The JSON of ``/api/v1/metrics/``."""
    status, _, body = get(server.url + METRICS_PATH, token=token)
    if status != 200:
        raise RuntimeError(f"{METRICS_PATH} answered {status}: {body[:500]!r}")
    result: dict[str, Any] = json.loads(body)
    return result


def run_loadtest(
    python: str | Path, env: Mapping[str, str], server: Server, users: int, requests: int, json_path: Path,
    paths: Sequence[str] = LOAD_PATHS, capture: bool = False, html_path: Path | None = None,
    p99_ms: float = P99_MS, warmup: int = 0,
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``manage.py loadtest USERS REQUESTS`` against ``server`` with the demo's criteria, reported in ``json_path``."""
    args = ["loadtest", str(users), str(requests), "--url", server.url, "--json", str(json_path)]
    args += ["--target-success-rate", f"{SUCCESS_RATE:g}", "--target-p99-ms", f"{p99_ms:g}"]
    args += ["--target-avg-ms", f"{AVG_MS:g}", "--target-rps", f"{MIN_RPS:g}", "--warmup", str(warmup)]
    if html_path is not None:
        args += ["--html", str(html_path)]
    for path in paths:
        args += ["--path", path]
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT} if capture else {}
    return manage(python, args, env, check=False, **output)


def sent_requests(report: Mapping[str, Any]) -> int:
    """How many requests the load test sent, from its JSON report (warm-up requests reach the server too)."""
    totals = report["totals"]
    return int(totals["requests"]) + int(totals.get("warmup_requests") or 0)


@dataclass
class Verdict:
    """The demo's result: what failed (nothing when it passed) and what the figures mean."""

    failures: list[str]
    notes: list[str]

    @property
    def passed(self) -> bool:
        """Whether the load test passed and the server counted exactly what was sent."""
        return not self.failures


def judge(
    loadtest_status: int, report: Mapping[str, Any], before: Mapping[str, Any], after: Mapping[str, Any], planned: int
) -> Verdict:
    """Compare the load test's report with the server's metrics; the demo exits non-zero unless this passes."""
    failures: list[str] = []
    notes: list[str] = []
    if loadtest_status == LOADTEST_CRITERIA_FAILED:
        missed = [str(c["name"]) for c in report.get("criteria", []) if not c.get("passed")]
        failures.append(f"the load test missed its criteria: {', '.join(missed) or 'see its report'}")
    elif loadtest_status != 0:
        failures.append(f"manage.py loadtest failed with exit status {loadtest_status}")
    sent = sent_requests(report)
    probes = int(before["request_count"])
    counted = int(after["request_count"])
    if sent != planned:
        failures.append(f"the load test planned {planned} requests but sent {sent}")
    if counted != sent + probes:
        failures.append(f"request_count is {counted}, not the {sent} load-test requests + {probes} probe(s)")
    else:
        notes.append(
            f"request_count {counted} = {sent} load-test requests (warm-up included) + {probes} start-up health "
            "probe(s): the server counts every request it answers, including the probe the demo sent to know "
            "gunicorn was up (the metrics reads themselves are left out by METRICS_EXCLUDE_VIEWS)."
        )
    client = report.get("latency_ms") or {}
    server = after.get("response_time_ms") or {}
    if client.get("p99") is not None and server.get("p99") is not None:
        compared = ">" if client["p99"] > server["p99"] else "<="
        note = (
            f"p99 seen by the client {client['p99']:.1f} ms {compared} seen by the server {server['p99']:.1f} ms: the "
            "server times a request from its middleware to the response; the client also waits while the request "
            f"queues for a free worker ({report['config']['users']} users share the workers), crosses the network "
            "stack and is read back by the client's own event loop on the same machine, so it normally sees more."
        )
        if compared == "<=":
            note += " Here the server's figure is higher: it is the upper bound of a histogram bucket, not exact."
        notes.append(note)
    return Verdict(failures, notes)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; 0 when the load test passed and the metrics agree with it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="concurrent virtual users (default 20)")
    parser.add_argument("--requests", type=int, default=15, help="requests per user (default 15)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--venv", type=Path, default=VENV_DIR, help="virtual environment to use (default .venv-demo)")
    parser.add_argument("--python", type=Path, help="use this interpreter (with the example installed), no venv")
    parser.add_argument("--reports", type=Path, default=REPORTS_DIR, help="where to keep the reports (demo-reports/)")
    parser.add_argument("--p99-ms", type=float, default=P99_MS, help=f"p99 criterion in ms (default {P99_MS:g})")
    options = parser.parse_args(argv)
    started = time.monotonic()
    python = options.python.absolute() if options.python else ensure_venv(options.venv)
    token = secrets.token_urlsafe(24)
    reports: Path = options.reports
    reports.mkdir(parents=True, exist_ok=True)
    json_path, html_path, metrics_path = (reports / name for name in ("loadtest.json", "loadtest.html", "metrics.json"))
    for stale in (json_path, html_path, metrics_path):
        stale.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="prodkit-demo-") as tmp:
        workdir = Path(tmp)
        env = server_environment(workdir, token)
        log(f"migrating and seeding a fresh SQLite database in {workdir}")
        prepare_database(python, env)
        log(f"starting gunicorn with {options.workers} workers on a free port on 127.0.0.1")
        with running_server(python, env, workdir, workers=options.workers) as server:
            log(f"serving {server.url} (gunicorn master PID {server.process.pid})")
            before = metrics_snapshot(server, token)
            log(
                f"load test: {options.users} users x {options.requests} requests over {len(LOAD_PATHS)} endpoints; "
                f"passes when {SUCCESS_RATE:g} % succeed, p99 < {options.p99_ms:g} ms, average < {AVG_MS:g} ms "
                f"and > {MIN_RPS:g} requests/s (a busy laptop or CI runner meets these; a broken server does not)"
            )
            result = run_loadtest(
                python, env, server, options.users, options.requests, json_path, html_path=html_path,
                p99_ms=options.p99_ms, warmup=WARMUP,
            )  # fmt: skip
            if not json_path.exists():
                log(f"FAILED: manage.py loadtest exited with {result.returncode} and wrote no report")
                return 1
            report = json.loads(json_path.read_text())
            after = metrics_snapshot(server, token)
            metrics_path.write_text(json.dumps(after, indent=2) + "\n")
            log(f"{METRICS_PATH} snapshot after the load test:")
            print(json.dumps(after, indent=2), flush=True)
            verdict = judge(result.returncode, report, before, after, options.users * options.requests + WARMUP)
        log(f"server stopped; demo finished in {time.monotonic() - started:.1f} s")
    for note in verdict.notes:
        log(note)
    log("reports of this run:")
    for path in (html_path, json_path, metrics_path):
        if path.exists():
            print(f"    {path}", flush=True)
    if not verdict.passed:
        log("DEMO FAILED: " + "; ".join(verdict.failures))
        return 1
    log("demo passed: the load test met its criteria and the metrics counted exactly what was sent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
