"""The outbound patches behave like the libraries they wrap: same exceptions, one header per name, any
argument shape, stacking with other patchers in any order, and headers only to the allowed hosts.
"""

from __future__ import annotations

import functools
import itertools
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import requests
import urllib3
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.util.retry import Retry

from django_prodkit import outbound
from django_prodkit.context.ids import reset_request_id, set_request_id
from django_prodkit.outbound.checks import check_outbound_deploy, check_outbound_hosts

CLIENTS = ["requests", "httpx", "urllib3"]
REQUEST_ID = "4f1c2a9e-0d3b-4a55-9c1e-7b8d6e5f4a3b"

pytestmark = pytest.mark.timeout(60)


class Echo:
    """Answers every GET with every value of every header it received (repeated names kept apart)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen: dict[str, list[str]] = {}
                for name, value in self.headers.items():
                    seen.setdefault(name.lower(), []).append(value)
                payload = json.dumps(seen).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/echo"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def echo_server() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.close()


@pytest.fixture
def echo(settings: Any, echo_server: Echo) -> Iterator[Echo]:
    """The echo server, with the clients instrumented and a request id current."""
    settings.PRODKIT = {"PROPAGATE_OUTBOUND": CLIENTS}
    token = set_request_id(REQUEST_ID)
    yield echo_server
    reset_request_id(token)
    outbound.uninstall()


@functools.cache
def _clients() -> tuple[requests.Session, httpx.Client, urllib3.PoolManager]:
    # One of each for the whole module: building an httpx client (its TLS context) costs more than a call.
    return requests.Session(), httpx.Client(timeout=10), urllib3.PoolManager()


def call(client: str, url: str, headers: dict[str, str] | None = None) -> dict[str, list[str]]:
    """One GET through ``client``; the headers the server saw."""
    session, httpx_client, pool = _clients()
    if client == "requests":
        return session.get(url, headers=headers, timeout=10).json()  # type: ignore[no-any-return]
    if client == "httpx":
        return httpx_client.get(url, headers=headers).json()  # type: ignore[no-any-return]
    return json.loads(pool.request("GET", url, headers=headers, timeout=10).data)  # type: ignore[no-any-return]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _retry_failure() -> BaseException:
    with urllib3.PoolManager() as pool:
        try:
            pool.request("GET", f"http://127.0.0.1:{_closed_port()}/", retries=Retry(connect=2, backoff_factor=0))
        except BaseException as exc:
            return exc
    raise AssertionError("the call to a closed port succeeded")


def test_urllib3_retries_raise_what_urllib3_raises(echo: Echo) -> None:
    expected = _retry_failure()
    outbound.install(CLIENTS)
    raised = _retry_failure()
    assert type(raised) is type(expected) is MaxRetryError
    assert isinstance(raised, MaxRetryError)
    assert isinstance(raised.reason, NewConnectionError)


@pytest.mark.parametrize("client", CLIENTS)
def test_a_header_the_caller_set_in_any_case_is_sent_once(echo: Echo, client: str) -> None:
    outbound.install(CLIENTS)
    seen = call(client, echo.url, {"x-request-id": "callers-own"})
    assert seen["x-request-id"] == ["callers-own"]
    assert call(client, echo.url)["x-request-id"] == [REQUEST_ID]


def test_urlopen_takes_any_argument_shape(echo: Echo) -> None:
    outbound.install(CLIENTS)
    pool = urllib3.HTTPConnectionPool("127.0.0.1", int(echo.url.split(":")[2].split("/")[0]))
    given = {"X-Request-ID": "positional"}
    # Every argument by position, as urllib3's own retry path passes them.
    response = pool.urlopen("GET", "/echo", None, given, Retry(0), True, True)
    assert json.loads(response.data)["x-request-id"] == ["positional"]
    response = pool.urlopen(method="GET", url="/echo", headers={"Accept": "x/y"})
    assert json.loads(response.data)["x-request-id"] == [REQUEST_ID]
    assert given == {"X-Request-ID": "positional"}  # the caller's dict is not changed


def _foreign(owner: type, attribute: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """Another library's patcher, written the common way: keep what is there, restore it on removal."""
    saved: list[Any] = []

    def install() -> None:
        original = owner.__dict__[attribute]
        saved.append(original)

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return original(*args, **kwargs)

        setattr(owner, attribute, wrapper)

    def uninstall() -> None:
        setattr(owner, attribute, saved.pop())

    return install, uninstall


PATCHED = {
    "requests": (HTTPAdapter, "send"),
    "httpx": (httpx.HTTPTransport, "handle_request"),
    "urllib3": (HTTPConnectionPool, "urlopen"),
}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("order", list(itertools.permutations(["ours+", "theirs+", "ours-", "theirs-"])))
def test_install_and_uninstall_in_any_order_beside_another_patcher(
    echo: Echo, client: str, order: tuple[str, ...]
) -> None:
    owner, attribute = PATCHED[client]
    pristine = owner.__dict__[attribute]
    theirs_install, theirs_uninstall = _foreign(owner, attribute)
    steps = {
        "ours+": lambda: outbound.install([client]),
        "ours-": outbound.uninstall,
        "theirs+": theirs_install,
        "theirs-": theirs_uninstall,
    }
    # The layers on the method, innermost first, as each patcher leaves them; whether ours is switched on.
    layers: list[str] = []
    active = False
    for step in order:
        if step == "theirs-" and "theirs" not in layers:
            continue  # the other library removes only what it installed
        steps[step]()
        if step == "ours+":
            active = True
            if "ours" not in layers:
                layers.append("ours")
        elif step == "ours-":
            active = False
            if layers[-1:] == ["ours"]:
                layers.pop()
        elif step == "theirs+":
            layers.append("theirs")
        else:
            # It restores what it found, taking any wrapper installed above it along.
            del layers[layers.index("theirs") :]
        seen = call(client, echo.url)  # every call works, whatever the layers
        expected = [REQUEST_ID] if active and "ours" in layers else None
        assert seen.get("x-request-id") == expected, (order, step)
    outbound.install([client])
    assert call(client, echo.url)["x-request-id"] == [REQUEST_ID]
    outbound.uninstall()
    assert "x-request-id" not in call(client, echo.url)
    if "theirs" in layers:
        theirs_uninstall()
    assert "x-request-id" not in call(client, echo.url)
    if owner.__dict__[attribute] is not pristine:
        # Ours stayed under the other patcher's wrapper when that one was removed first: a pass-through.
        outbound.install([client])
        assert call(client, echo.url)["x-request-id"] == [REQUEST_ID]
        outbound.uninstall()


@pytest.mark.parametrize("client", CLIENTS)
def test_headers_go_only_to_the_allowed_hosts(echo: Echo, settings: Any, client: str) -> None:
    outbound.install(CLIENTS)
    settings.PRODKIT = {"PROPAGATE_OUTBOUND": CLIENTS, "PROPAGATE_OUTBOUND_HOSTS": ["api.internal", ".svc.local"]}
    assert "x-request-id" not in call(client, echo.url)
    settings.PRODKIT = {"PROPAGATE_OUTBOUND": CLIENTS, "PROPAGATE_OUTBOUND_HOSTS": ["127.0.0.1"]}
    assert call(client, echo.url)["x-request-id"] == [REQUEST_ID]


def test_host_patterns_are_checked_and_all_hosts_is_a_deploy_warning(settings: Any) -> None:
    settings.PRODKIT = {"PROPAGATE_OUTBOUND_HOSTS": ["api.internal", ".svc.local", "https://x.example/", "", "*"]}
    [error] = check_outbound_hosts()
    assert (error.id, error.level) == ("prodkit.E110", checks.ERROR)
    assert "'https://x.example/', ''" in error.msg
    assert not check_outbound_deploy()  # no client propagates
    settings.PRODKIT = {"PROPAGATE_OUTBOUND": ["requests"]}
    [warning] = check_outbound_deploy()
    assert (warning.id, warning.level) == ("prodkit.W112", checks.WARNING)
    assert warning.hint
    with pytest.raises(SystemCheckError, match=r"prodkit\.W112"):
        call_command("check", "--deploy", "--fail-level", "WARNING", "--tag", "prodkit")
    settings.PRODKIT = {"PROPAGATE_OUTBOUND": ["requests"], "PROPAGATE_OUTBOUND_HOSTS": [".internal"]}
    assert not check_outbound_deploy()
    assert not check_outbound_hosts()
