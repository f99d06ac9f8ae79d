"""``--serve``: run the project under gunicorn on a free port of 127.0.0.1 for the length of a load test."""

from __future__ import annotations

import http.client
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

HOST = "127.0.0.1"
DEFAULT_HEALTH_PATH = "/api/v1/healthcheck/"
DEFAULT_START_TIMEOUT = 30.0
POLL_INTERVAL = 0.1
STOP_TIMEOUT = 10.0
OUTPUT_TAIL_LINES = 20
SERVE_CONFIG = "django_prodkit.loadtest.serve_config"


class ServeError(Exception):
    """The server could not be started or did not become healthy."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wsgi_target(dotted: str) -> tuple[str, Path]:
    """``"mysite.wsgi.application"`` -> (``"mysite.wsgi:application"``, the sys.path entry that holds ``mysite``)."""
    module, _, attr = dotted.rpartition(".")
    if not module:
        raise ServeError(f"WSGI_APPLICATION {dotted!r} is not a dotted path to an application")
    top = module.split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or (spec.origin is None and not spec.submodule_search_locations):
        raise ServeError(f"cannot find the module {top!r} of WSGI_APPLICATION {dotted!r}")
    if spec.submodule_search_locations:
        location = Path(next(iter(spec.submodule_search_locations))).parent
    else:
        location = Path(str(spec.origin)).parent
    return f"{module}:{attr}", location


def answers(port: int, path: str, timeout: float) -> int | None:
    """The status of ``GET path`` on the local port, or None when nothing answers."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "django-prodkit-loadtest (health)"})
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def is_healthy(status: int | None, path_missing_ok: bool = True) -> bool:
    """Healthy: a 2xx/3xx from the health path, or any answer at all when that path does not exist (404)."""
    return status is not None and (200 <= status < 400 or (path_missing_ok and status == 404))


class GunicornServer:
    """A gunicorn process serving the project; a context manager that always stops it by PID."""

    def __init__(
        self,
        wsgi_application: str,
        settings_module: str,
        *,
        workers: int = 2,
        threads: int = 1,
        health_path: str = DEFAULT_HEALTH_PATH,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.app, self.project_dir = wsgi_target(wsgi_application)
        self.settings_module = settings_module
        self.workers = workers
        self.threads = threads
        self.health_path = health_path
        self.start_timeout = start_timeout
        self.log_path = log_path
        self.extra_env = dict(env or {})
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The base URL the server listens on."""
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The gunicorn master's process id."""
        return None if self.process is None else self.process.pid

    def command(self) -> list[str]:
        """The gunicorn command line."""
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
            "--chdir",
            str(self.project_dir),
            "--graceful-timeout",
            "5",
            "--log-level",
            "warning",
            "--config",
            f"python:{SERVE_CONFIG}",
            self.app,
        ]

    def start(self) -> None:
        """Start gunicorn and wait until it is healthy."""
        self.launch()
        self.wait_healthy()

    def launch(self) -> None:
        """Start the gunicorn process on a free port."""
        if importlib.util.find_spec("gunicorn") is None:
            raise ServeError("--serve needs gunicorn: pip install 'django-prodkit[loadtest]'")
        self.port = free_port()
        # Kept open until stop(): gunicorn writes to it for the whole run and errors quote its tail. Opened for
        # appending: gunicorn shares the file offset, and reading the tail must not make it write over the start.
        if self.log_path is None:
            self._log = tempfile.TemporaryFile(mode="a+b")  # noqa: SIM115
        else:
            try:
                self.log_path.write_bytes(b"")
                self._log = self.log_path.open("a+b")
            except OSError as exc:
                raise ServeError(f"--serve-log {self.log_path}: cannot be written ({exc.strerror or exc})") from None
        env = {**os.environ, **self.extra_env, "DJANGO_SETTINGS_MODULE": self.settings_module}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.project_dir), env.get("PYTHONPATH")]))
        # A session of its own: Ctrl-C in the terminal reaches only us, and we stop gunicorn in order.
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter and fixed arguments
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def wait_healthy(self) -> None:
        """Poll the health path until it answers; raise ServeError if gunicorn exits or the time runs out."""
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServeError(f"gunicorn exited with status {self.process.returncode}:\n{self.output()}")
            status = answers(self.port, self.health_path, timeout=2.0)
            if is_healthy(status):
                return
            time.sleep(POLL_INTERVAL)
        raise ServeError(f"gunicorn did not become healthy within {self.start_timeout:g}s:\n{self.output()}")

    def output(self, lines: int = OUTPUT_TAIL_LINES) -> str:
        """The last lines gunicorn wrote."""
        if self._log is None or self._log.closed:
            return ""
        self._log.seek(0)
        text = self._log.read().decode(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        """Stop gunicorn: SIGTERM for a graceful stop, SIGKILL if it is still there after a while."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                # The master did not stop its workers in time: kill the whole process group it leads.
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> GunicornServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
