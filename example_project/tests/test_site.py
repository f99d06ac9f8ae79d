"""Everything around the API: prodkit endpoints and middleware, admin, JSON errors, HTTPS, settings, seeding."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from blog.models import Comment, Post, Tag

EXAMPLE_DIR = Path(__file__).resolve().parent.parent
METRICS_TOKEN = os.environ["PRODKIT_METRICS_TOKENS"]
pytestmark = pytest.mark.django_db


def test_liveness_and_readiness(anon: APIClient) -> None:
    live = anon.get("/api/v1/healthcheck/")
    assert live.status_code == 200
    assert live.json()["status"] == "ok"
    ready = anon.get("/api/v1/healthcheck/ready/")
    assert ready.status_code == 200, ready.json()


def test_liveness_answers_a_probe_by_ip_without_https() -> None:
    # A load balancer probes the instance's IP over plain HTTP: neither ALLOWED_HOSTS nor the SSL redirect apply.
    response = Client().get("/api/v1/healthcheck/", HTTP_HOST="10.0.3.7:8080")
    assert response.status_code == 200
    other = Client().get("/api/v1/posts/", HTTP_HOST="10.0.3.7:8080", secure=True)
    assert other.status_code == 400
    assert other.json() == {"detail": "Bad request."}


def test_metrics_need_the_token_and_count_requests(client_for, alice: User) -> None:
    anon = client_for(None)
    assert anon.get("/api/v1/metrics/").status_code == 401
    anon.credentials(HTTP_AUTHORIZATION="Bearer wrong")
    assert anon.get("/api/v1/metrics/").status_code == 403
    reader = client_for(None)
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    before = reader.get("/api/v1/metrics/").json()["request_count"]
    for _ in range(3):
        client_for(None).get("/api/v1/posts/")
    client_for(None).get("/api/v1/posts/missing/")
    after = reader.get("/api/v1/metrics/").json()
    assert after["request_count"] - before == 4


def test_every_response_has_a_request_id(anon: APIClient) -> None:
    first = anon.get("/api/v1/posts/")
    second = anon.get("/api/v1/nowhere/")
    assert first["X-Request-ID"]
    assert second["X-Request-ID"]
    assert first["X-Request-ID"] != second["X-Request-ID"]
    kept = anon.get("/api/v1/posts/", HTTP_X_REQUEST_ID="0123456789abcdef0123456789abcdef")
    assert kept["X-Request-ID"] == "0123456789abcdef0123456789abcdef"


def test_unknown_url_is_json_404(anon: APIClient) -> None:
    response = anon.get("/no/such/page/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_plain_http_is_redirected_to_https() -> None:
    response = Client().get("/api/v1/posts/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/api/v1/posts/"


def test_security_headers(anon: APIClient) -> None:
    response = anon.get("/api/v1/posts/")
    assert response["Strict-Transport-Security"].startswith("max-age=")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"


def test_admin_lists_posts_comments_and_tags(client_for, alice: User, make_post, make_comment) -> None:
    admin = User.objects.create_superuser("root", "root@example.com", "root-password-123")
    make_comment(make_post(alice, title="Admin me", tags=("ops",)), alice)
    client = Client()
    client.force_login(admin)
    for model in ("post", "comment", "tag"):
        response = client.get(f"/admin/blog/{model}/", secure=True)
        assert response.status_code == 200, model
    assert b"Admin me" in client.get("/admin/blog/post/", secure=True).content
    change = client.get(f"/admin/blog/post/{Post.objects.get().pk}/change/", secure=True)
    assert change.status_code == 200


def test_seed_blog_is_idempotent() -> None:
    out = StringIO()
    call_command("seed_blog", "--users", "3", "--posts", "12", "--comments", "2", stdout=out)
    assert "12 posts" in out.getvalue()
    counts = (User.objects.count(), Tag.objects.count(), Post.objects.count(), Comment.objects.count())
    published = Post.objects.published().count()
    assert counts == (3, 8, 12, 2 * published)
    assert published == 11  # every tenth post is a draft
    snapshot = list(Post.objects.order_by("slug").values_list("slug", "title", "author__username", "status"))
    call_command("seed_blog", "--users", "3", "--posts", "12", "--comments", "2", stdout=StringIO())
    assert (User.objects.count(), Tag.objects.count(), Post.objects.count(), Comment.objects.count()) == counts
    assert list(Post.objects.order_by("slug").values_list("slug", "title", "author__username", "status")) == snapshot
    call_command("seed_blog", "--users", "3", "--posts", "15", "--comments", "2", stdout=StringIO())
    assert Post.objects.count() == 15
    assert User.objects.get(username="demo1").check_password("demo-password")


def test_seed_blog_sizes_and_bad_arguments() -> None:
    call_command("seed_blog", "--size", "small", stdout=StringIO())
    assert (User.objects.count(), Post.objects.count()) == (3, 20)
    with pytest.raises(CommandError):
        call_command("seed_blog", "--users", "0", stdout=StringIO())


def run_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Import the real settings module in a fresh interpreter with exactly ``env`` as configuration."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PRODKIT_"))}
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DEBUG, settings.SECURE_SSL_REDIRECT)"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=EXAMPLE_DIR,
        env={**keep, "DJANGO_SETTINGS_MODULE": "example_project.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "DJANGO_SECRET_KEY must be set"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG='maybe' is not a boolean"),
        ({"DJANGO_SECRET_KEY": "k", "DATABASE_CONN_MAX_AGE": "soon"}, "DATABASE_CONN_MAX_AGE='soon' is not an integer"),
        ({"DJANGO_DEBUG": "true"}, "True False"),
        ({"DJANGO_SECRET_KEY": "k"}, "False True"),
        ({"DJANGO_SECRET_KEY": "k", "DJANGO_HTTPS": "false"}, "False False"),
    ],
)
def test_settings_from_environment(env: dict[str, str], expected: str) -> None:
    result = run_settings(env)
    assert expected in result.stdout + result.stderr


def test_production_configuration_passes_check_deploy() -> None:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PRODKIT_"))}
    env = {
        **keep,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "blog.example.com",
        "DJANGO_BEHIND_TLS_PROXY": "true",
        "PRODKIT_METRICS_TOKENS": secrets.token_urlsafe(32),
    }
    command = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    result = subprocess.run(command, cwd=EXAMPLE_DIR, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    without_token = {k: v for k, v in env.items() if k != "PRODKIT_METRICS_TOKENS"}
    result = subprocess.run(
        command, cwd=EXAMPLE_DIR, env=without_token, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "prodkit.W020" in result.stderr


def test_migrations_match_the_models() -> None:
    call_command("makemigrations", "blog", "--check", "--dry-run", stdout=StringIO())
