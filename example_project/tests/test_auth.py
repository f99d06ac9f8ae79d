"""Tokens, Bearer authentication and registration."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token/"
REGISTER = "/api/v1/auth/register/"


def test_obtain_token_and_use_it_as_bearer(anon: APIClient, alice: User) -> None:
    response = anon.post(TOKEN, {"username": "alice", "password": "alice-password-123"}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    assert token == Token.objects.get(user=alice).key
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    created = anon.post("/api/v1/posts/", {"title": "By token", "body": "x"}, format="json")
    assert created.status_code == 201
    assert created.json()["author"] == "alice"


def test_same_token_on_every_login(anon: APIClient, alice: User) -> None:
    credentials = {"username": "alice", "password": "alice-password-123"}
    assert anon.post(TOKEN, credentials, format="json").json() == anon.post(TOKEN, credentials, format="json").json()


def test_wrong_password_or_missing_fields_are_400(anon: APIClient, alice: User) -> None:
    wrong = anon.post(TOKEN, {"username": "alice", "password": "nope"}, format="json")
    assert wrong.status_code == 400
    assert wrong.json() == {"non_field_errors": ["Unable to log in with provided credentials."]}
    missing = anon.post(TOKEN, {}, format="json")
    assert missing.status_code == 400
    assert set(missing.json()) == {"username", "password"}


def test_inactive_user_gets_no_token(anon: APIClient, alice: User) -> None:
    alice.is_active = False
    alice.save()
    assert anon.post(TOKEN, {"username": "alice", "password": "alice-password-123"}, format="json").status_code == 400


def test_register_creates_user_and_returns_token(anon: APIClient) -> None:
    payload = {"username": "carol", "email": "carol@example.com", "password": "a-long-unusual-passphrase"}
    response = anon.post(REGISTER, payload, format="json")
    assert response.status_code == 201
    data = response.json()
    assert data["username"] == "carol"
    assert data["email"] == "carol@example.com"
    assert "password" not in data
    user = User.objects.get(username="carol")
    assert user.check_password("a-long-unusual-passphrase")
    assert data["token"] == user.auth_token.key
    login = anon.post(TOKEN, {"username": "carol", "password": "a-long-unusual-passphrase"}, format="json")
    assert login.json()["token"] == data["token"]


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"username", "password"}),
        ({"username": "alice", "password": "a-long-unusual-passphrase"}, {"username"}),
        ({"username": "has space", "password": "a-long-unusual-passphrase"}, {"username"}),
        ({"username": "dave", "password": "short"}, {"password"}),
        ({"username": "dave", "password": "password123"}, {"password"}),
        ({"username": "dave", "password": "12345678901234"}, {"password"}),
        ({"username": "dave", "email": "not-an-email", "password": "a-long-unusual-passphrase"}, {"email"}),
    ],
)
def test_registration_validation_errors(
    anon: APIClient, alice: User, payload: dict[str, str], fields: set[str]
) -> None:
    response = anon.post(REGISTER, payload, format="json")
    assert response.status_code == 400
    assert set(response.json()) == fields
    assert not User.objects.filter(username="dave").exists()


def test_registration_ignores_bad_credentials_header(anon: APIClient) -> None:
    anon.credentials(HTTP_AUTHORIZATION="Bearer stale-token")
    payload = {"username": "erin", "password": "a-long-unusual-passphrase"}
    assert anon.post(REGISTER, payload, format="json").status_code == 201


def test_token_and_registration_requests_are_throttled(anon: APIClient, alice: User) -> None:
    wrong = {"username": "alice", "password": "guess"}
    statuses = [anon.post(TOKEN, wrong, format="json").status_code for _ in range(20)]
    assert statuses == [400] * 20
    throttled = anon.post(TOKEN, {"username": "alice", "password": "alice-password-123"}, format="json")
    assert throttled.status_code == 429
    assert "Retry-After" in throttled
    assert anon.post(REGISTER, {"username": "x"}, format="json").status_code == 429
