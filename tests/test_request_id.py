from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import AsyncClient, Client

from django_prodkit.request_id import (
    MAX_REQUEST_ID_LENGTH,
    generate_request_id,
    get_request_id,
    is_valid_request_id,
    resolve_request_id,
)

HELLO = "/api/v1/hello/"
ORIGIN = "https://app.example.com"


def is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def test_every_response_gets_a_fresh_uuid4(client: Client) -> None:
    first = client.get(HELLO)
    second = client.get(HELLO)
    assert is_uuid4(first["X-Request-ID"])
    assert is_uuid4(second["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]
    assert first.json()["request_id"] == first["X-Request-ID"]


def test_404_and_500_responses_carry_the_id(client: Client) -> None:
    client.raise_request_exception = False
    assert is_uuid4(client.get("/nowhere/")["X-Request-ID"])
    response = client.get("/api/v1/boom/")
    assert response.status_code == 500
    assert is_uuid4(response["X-Request-ID"])


@pytest.mark.parametrize(
    "incoming",
    [
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "a",
        "user@host:8080/path+x=y_z.w",
        "x" * MAX_REQUEST_ID_LENGTH,
    ],
)
def test_valid_incoming_id_is_kept(client: Client, incoming: str) -> None:
    response = client.get(HELLO, headers={"X-Request-ID": incoming})
    assert response["X-Request-ID"] == incoming
    assert response.json()["request_id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    [
        "abc\r\nSet-Cookie: evil=1",
        "abc\ndef",
        'quote"d',
        "single'quote",
        "has space",
        "caf\u00e9",
        "x" * (MAX_REQUEST_ID_LENGTH + 1),
        "",
        "tab\there",
        "<script>",
    ],
)
def test_invalid_incoming_id_is_replaced(client: Client, incoming: str) -> None:
    response = client.get(HELLO, HTTP_X_REQUEST_ID=incoming)
    assert is_uuid4(response["X-Request-ID"])
    assert response.json()["request_id"] == response["X-Request-ID"]


def test_untrusted_incoming_ids_are_replaced(client: Client, settings: object) -> None:
    settings.PRODKIT = {"REQUEST_ID_TRUST_INCOMING": False}  # type: ignore[attr-defined]
    response = client.get(HELLO, headers={"X-Request-ID": "upstream-id-123"})
    assert is_uuid4(response["X-Request-ID"])


def test_header_name_is_configurable(client: Client, settings: object) -> None:
    settings.PRODKIT = {"REQUEST_ID_HEADER": "X-Correlation-ID"}  # type: ignore[attr-defined]
    response = client.get(HELLO, headers={"X-Correlation-ID": "corr-1", "X-Request-ID": "other", "Origin": ORIGIN})
    assert response["X-Correlation-ID"] == "corr-1"
    assert "X-Request-ID" not in response
    assert response["Access-Control-Expose-Headers"] == "X-Correlation-ID"


def test_expose_header_is_appended_not_overwritten(client: Client) -> None:
    response = client.get("/api/v1/exposed/", headers={"Origin": ORIGIN})
    assert response["Access-Control-Expose-Headers"] == "X-Custom, X-Request-ID"


def test_expose_header_is_not_duplicated(client: Client) -> None:
    response = client.get("/api/v1/exposed-id/", headers={"Origin": ORIGIN})
    assert response["Access-Control-Expose-Headers"] == "x-request-id, X-Other"
    assert client.get(HELLO, headers={"Origin": ORIGIN})["Access-Control-Expose-Headers"] == "X-Request-ID"


def test_expose_header_only_on_cross_origin_requests(client: Client) -> None:
    assert "Access-Control-Expose-Headers" not in client.get(HELLO)
    assert client.get("/api/v1/exposed/")["Access-Control-Expose-Headers"] == "X-Custom"


def test_expose_header_can_be_turned_off(client: Client, settings: object) -> None:
    settings.PRODKIT = {"REQUEST_ID_EXPOSE_HEADER": False}  # type: ignore[attr-defined]
    response = client.get(HELLO, headers={"Origin": ORIGIN})
    assert "Access-Control-Expose-Headers" not in response
    assert "Vary" not in response


def test_responses_vary_on_origin_as_the_expose_header_does(client: Client) -> None:
    # Without Vary: Origin a shared cache could hand the same-origin answer (no expose header) to a browser page
    # on another origin, which then cannot read X-Request-ID.
    assert client.get(HELLO)["Vary"] == "Origin"
    assert client.get(HELLO, headers={"Origin": ORIGIN})["Vary"] == "Origin"
    cookie_vary = client.get("/api/v1/vary-cookie/", headers={"Origin": ORIGIN})["Vary"]
    assert [name.strip() for name in cookie_vary.split(",")] == ["Cookie", "Origin"]


def test_id_is_cleared_after_the_request(client: Client) -> None:
    assert get_request_id() is None
    client.get(HELLO, headers={"X-Request-ID": "will-not-leak"})
    assert get_request_id() is None


def test_ids_do_not_leak_between_threads() -> None:
    barrier = threading.Barrier(8)

    def one(index: int) -> tuple[str, str]:
        barrier.wait(timeout=10)
        sent = f"thread-{index}"
        response = Client().get(HELLO, headers={"X-Request-ID": sent})
        return sent, response.json()["request_id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(8)))
    assert all(sent == seen for sent, seen in results)


def test_concurrent_async_requests_never_see_each_others_id() -> None:
    asyncio.run(_concurrent_async_requests())


async def _concurrent_async_requests() -> None:
    client = AsyncClient()

    async def one(index: int) -> tuple[str, dict[str, str], str]:
        sent = f"async-{index}"
        response = await client.get("/api/v1/async/", headers={"X-Request-ID": sent})
        return sent, response.json(), response["X-Request-ID"]

    results = await asyncio.gather(*(one(i) for i in range(50)))
    for sent, body, header in results:
        assert body == {"request_id": sent, "seen_before_sleep": sent}
        assert header == sent
    fresh = await client.get("/api/v1/async/")
    assert is_uuid4(fresh.json()["request_id"])
    assert get_request_id() is None


def test_resolve_request_id_rules() -> None:
    assert resolve_request_id("keep-me") == "keep-me"
    assert resolve_request_id("keep-me", trust_incoming=False) != "keep-me"
    assert is_uuid4(resolve_request_id(None))
    assert len({generate_request_id() for _ in range(1000)}) == 1000
    assert is_valid_request_id(generate_request_id())
    assert not is_valid_request_id("a b")
