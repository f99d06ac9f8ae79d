"""Comments of a post and the tag list."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from blog.models import Comment, Tag
from django_prodkit.logging import JSONFormatter

pytestmark = pytest.mark.django_db

ClientFor = Callable[[User | None], APIClient]


def comments_url(slug: str) -> str:
    return f"/api/v1/posts/{slug}/comments/"


def test_list_comments_oldest_first(anon: APIClient, alice: User, bob: User, make_post, make_comment) -> None:
    post = make_post(alice, title="Talk")
    make_comment(post, bob, "First")
    make_comment(post, alice, "Second")
    other = make_post(alice, title="Other")
    make_comment(other, bob, "Elsewhere")
    response = anon.get(comments_url("talk"))
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=60, s-maxage=60"
    data = response.json()
    assert data["count"] == 2
    assert [(c["author"], c["body"]) for c in data["results"]] == [("bob", "First"), ("alice", "Second")]
    assert set(data["results"][0]) == {"id", "author", "body", "created_at"}


def test_comments_of_unknown_or_hidden_post_are_404(client_for: ClientFor, alice: User, bob: User, make_post) -> None:
    make_post(alice, title="Hidden", status="draft")
    assert client_for(None).get(comments_url("nope")).status_code == 404
    assert client_for(bob).get(comments_url("hidden")).status_code == 404
    assert client_for(bob).post(comments_url("hidden"), {"body": "hi"}, format="json").status_code == 404
    assert client_for(alice).get(comments_url("hidden")).status_code == 200


def test_create_comment(client_for: ClientFor, alice: User, bob: User, make_post) -> None:
    make_post(alice, title="Talk")
    response = client_for(bob).post(comments_url("talk"), {"body": "Great read."}, format="json")
    assert response.status_code == 201
    assert response.json()["author"] == "bob"
    assert Comment.objects.get().post.slug == "talk"


def test_create_comment_needs_authentication_and_a_body(client_for: ClientFor, alice: User, make_post) -> None:
    make_post(alice, title="Talk")
    assert client_for(None).post(comments_url("talk"), {"body": "x"}, format="json").status_code == 401
    for payload in ({}, {"body": ""}, {"body": "x" * 5001}):
        response = client_for(alice).post(comments_url("talk"), payload, format="json")
        assert response.status_code == 400
        assert set(response.json()) == {"body"}
    assert not Comment.objects.exists()


def test_retrieve_comment(anon: APIClient, alice: User, make_post, make_comment) -> None:
    comment = make_comment(make_post(alice, title="Talk"), alice, "Hello")
    assert anon.get(f"{comments_url('talk')}{comment.pk}/").json()["body"] == "Hello"
    assert anon.get(f"{comments_url('talk')}999999/").status_code == 404


def test_only_comment_author_or_staff_may_delete(
    client_for: ClientFor, alice: User, bob: User, staff: User, make_post, make_comment
) -> None:
    post = make_post(alice, title="Talk")
    first = make_comment(post, bob, "mine")
    second = make_comment(post, bob, "also mine")
    # The post's author is not the comment's author: no.
    assert client_for(alice).delete(f"{comments_url('talk')}{first.pk}/").status_code == 403
    assert client_for(None).delete(f"{comments_url('talk')}{first.pk}/").status_code == 401
    assert client_for(bob).delete(f"{comments_url('talk')}{first.pk}/").status_code == 204
    assert client_for(staff).delete(f"{comments_url('talk')}{second.pk}/").status_code == 204
    assert not Comment.objects.exists()


def test_comments_cannot_be_edited(client_for: ClientFor, alice: User, make_post, make_comment) -> None:
    comment = make_comment(make_post(alice, title="Talk"), alice)
    response = client_for(alice).patch(f"{comments_url('talk')}{comment.pk}/", {"body": "edited"}, format="json")
    assert response.status_code == 405
    assert "detail" in response.json()


def test_tags_list_counts_published_posts_only(anon: APIClient, alice: User, make_post) -> None:
    make_post(alice, title="One", tags=("django", "aws"))
    make_post(alice, title="Two", tags=("django",))
    make_post(alice, title="Three", status="draft", tags=("django", "secret"))
    response = anon.get("/api/v1/tags/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=60, s-maxage=60"
    results = response.json()["results"]
    assert results == [
        {"name": "aws", "slug": "aws", "post_count": 1},
        {"name": "django", "slug": "django", "post_count": 2},
        {"name": "secret", "slug": "secret", "post_count": 0},
    ]


def test_tags_are_read_only(client_for: ClientFor, staff: User) -> None:
    assert client_for(staff).post("/api/v1/tags/", {"name": "new"}, format="json").status_code == 405


def test_tags_whose_names_slugify_alike_get_distinct_slugs(client_for: ClientFor, alice: User) -> None:
    response = client_for(alice).post(
        "/api/v1/posts/", {"title": "Langs", "body": "x", "tags": ["C", "C++"]}, format="json"
    )
    assert response.status_code == 201
    assert sorted(Tag.objects.values_list("slug", flat=True)) == ["c", "c-2"]


# A real commit: the task is sent from the request's on_commit callback, as in production.
@pytest.mark.django_db(transaction=True)
def test_a_new_comment_notifies_the_author_with_the_requests_id(
    client_for: ClientFor, alice: User, bob: User, make_post
) -> None:
    make_post(alice, title="Talk")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    task_logger = logging.getLogger("blog.tasks")
    task_logger.addHandler(handler)
    try:
        response = client_for(bob).post(
            comments_url("talk"), {"body": "Great read."}, format="json", HTTP_X_REQUEST_ID="req-new-comment"
        )
    finally:
        task_logger.removeHandler(handler)
    assert response.status_code == 201
    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["event"] == "notified the author of a new comment"
    assert line["request_id"] == "req-new-comment"
    assert line["task_name"] == "blog.notify_new_comment"
    assert line["post_author_id"] == alice.pk
    assert line["comment_id"] == Comment.objects.get().pk
