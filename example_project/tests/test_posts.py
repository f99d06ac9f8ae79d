"""Posts: listing, filters, search, ordering, pagination, CRUD, visibility of drafts, permissions, validation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from blog.models import Post

POSTS = "/api/v1/posts/"
pytestmark = pytest.mark.django_db

ClientFor = Callable[[User | None], APIClient]


def slugs(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [item["slug"] for item in response.json()["results"]]


def test_list_is_paginated_json_with_post_fields(anon: APIClient, alice: User, make_post) -> None:
    for i in range(25):
        make_post(alice, title=f"Post {i}", tags=("django",))
    response = anon.get(POSTS)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert data["count"] == 25
    assert len(data["results"]) == 20
    assert data["next"].endswith("?page=2")
    assert data["previous"] is None
    first = data["results"][0]
    assert set(first) == {
        "slug",
        "title",
        "body",
        "status",
        "author",
        "tags",
        "comment_count",
        "created_at",
        "updated_at",
        "published_at",
    }
    assert first["author"] == "alice"
    assert first["tags"] == ["django"]
    page2 = anon.get(POSTS, {"page": 2}).json()
    assert len(page2["results"]) == 5


def test_page_size_is_client_chosen_and_bounded(anon: APIClient, alice: User, make_post) -> None:
    for i in range(3):
        make_post(alice, title=f"Post {i}")
    assert len(anon.get(POSTS, {"page_size": 2}).json()["results"]) == 2
    assert anon.get(POSTS, {"page_size": 1000}).json()["count"] == 3


def test_unknown_page_is_404_json(anon: APIClient) -> None:
    response = anon.get(POSTS, {"page": 99})
    assert response.status_code == 404
    assert "detail" in response.json()


def test_filter_by_author_tag_and_status(client_for: ClientFor, alice: User, bob: User, make_post) -> None:
    make_post(alice, title="Alice django", tags=("django",))
    make_post(alice, title="Alice aws", tags=("aws",))
    make_post(bob, title="Bob django", tags=("django", "aws"))
    make_post(alice, title="Alice draft", status="draft", tags=("django",))
    anon = client_for(None)
    assert sorted(slugs(anon.get(POSTS, {"author": "alice"}))) == ["alice-aws", "alice-django"]
    assert sorted(slugs(anon.get(POSTS, {"tag": "django"}))) == ["alice-django", "bob-django"]
    assert slugs(anon.get(POSTS, {"author": "bob", "tag": "aws"})) == ["bob-django"]
    assert slugs(anon.get(POSTS, {"status": "draft"})) == []
    assert slugs(client_for(alice).get(POSTS, {"status": "draft"})) == ["alice-draft"]


def test_invalid_status_filter_is_400_with_field_message(anon: APIClient) -> None:
    response = anon.get(POSTS, {"status": "deleted"})
    assert response.status_code == 400
    assert "status" in response.json()


def test_search_in_title_and_body(anon: APIClient, alice: User, make_post) -> None:
    make_post(alice, title="Gunicorn workers", body="About processes.")
    make_post(alice, title="Caching", body="Put gunicorn behind CloudFront.")
    make_post(alice, title="Unrelated", body="Nothing here.")
    assert sorted(slugs(anon.get(POSTS, {"search": "gunicorn"}))) == ["caching", "gunicorn-workers"]


def test_ordering(anon: APIClient, alice: User, make_post) -> None:
    for title in ("Bravo", "Alpha", "Charlie"):
        make_post(alice, title=title)
    assert slugs(anon.get(POSTS, {"ordering": "title"})) == ["alpha", "bravo", "charlie"]
    assert slugs(anon.get(POSTS, {"ordering": "-title"})) == ["charlie", "bravo", "alpha"]
    assert slugs(anon.get(POSTS)) == ["charlie", "alpha", "bravo"]  # newest first by default


def test_drafts_are_visible_only_to_their_author(
    client_for: ClientFor, alice: User, bob: User, staff: User, make_post
) -> None:
    make_post(alice, title="Secret", status="draft")
    url = f"{POSTS}secret/"
    assert client_for(alice).get(url).status_code == 200
    for other in (None, bob, staff):
        assert client_for(other).get(url).status_code == 404
        assert "secret" not in slugs(client_for(other).get(POSTS))
    assert "secret" in slugs(client_for(alice).get(POSTS))


def test_retrieve_by_slug_and_unknown_slug_is_404(
    anon: APIClient, alice: User, bob: User, make_post, make_comment
) -> None:
    post = make_post(alice, title="Hello world", tags=("python", "django"))
    make_comment(post, bob)
    make_comment(post, alice)
    response = anon.get(f"{POSTS}hello-world/")
    assert response.status_code == 200
    assert response.json()["comment_count"] == 2
    assert sorted(response.json()["tags"]) == ["django", "python"]
    missing = anon.get(f"{POSTS}no-such-post/")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "No Post matches the given query."}


def test_create_requires_authentication(anon: APIClient) -> None:
    response = anon.post(POSTS, {"title": "Hi", "body": "Text"}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert Post.objects.count() == 0


def test_invalid_token_is_401(client_for: ClientFor) -> None:
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-real-token")
    assert client.get(POSTS).status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Token not-the-right-keyword")
    assert client.post(POSTS, {"title": "x", "body": "y"}, format="json").status_code == 401


def test_create_sets_author_slug_tags_and_published_at(client_for: ClientFor, alice: User) -> None:
    payload = {"title": "My First Post!", "body": "Text", "status": "published", "tags": ["Django", "AWS", "Django"]}
    response = client_for(alice).post(POSTS, payload, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["slug"] == "my-first-post"
    assert data["author"] == "alice"
    assert sorted(data["tags"]) == ["AWS", "Django"]
    assert data["published_at"] is not None
    assert response["Cache-Control"] == "private, no-store"
    again = client_for(alice).post(POSTS, {"title": "My first post", "body": "Again"}, format="json").json()
    assert again["slug"] == "my-first-post-2"
    assert again["status"] == "draft"
    assert again["published_at"] is None


def test_create_validation_errors_name_the_fields(client_for: ClientFor, alice: User) -> None:
    client = client_for(alice)
    response = client.post(POSTS, {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"title", "body"}
    response = client.post(POSTS, {"title": "!!!", "body": "x", "status": "archived"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"title", "status"}
    response = client.post(POSTS, {"title": "x" * 201, "body": "x"}, format="json")
    assert set(response.json()) == {"title"}
    response = client.post(POSTS, {"title": "Ok", "body": "x", "tags": [f"t{i}" for i in range(11)]}, format="json")
    assert set(response.json()) == {"tags"}
    response = client.post(POSTS, {"title": "Ok", "body": "x", "tags": ["???"]}, format="json")
    assert set(response.json()) == {"tags"}
    response = client.post(POSTS, "not json", content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()
    assert Post.objects.count() == 0


def test_slug_cannot_be_written(client_for: ClientFor, alice: User, make_post) -> None:
    make_post(alice, title="Original")
    response = client_for(alice).patch(f"{POSTS}original/", {"slug": "hijacked", "title": "Renamed"}, format="json")
    assert response.status_code == 200
    assert response.json()["slug"] == "original"
    assert response.json()["title"] == "Renamed"


def test_author_updates_and_partially_updates(client_for: ClientFor, alice: User, make_post) -> None:
    make_post(alice, title="Draft one", status="draft", tags=("old",))
    client = client_for(alice)
    put = client.put(f"{POSTS}draft-one/", {"title": "Draft one", "body": "New body", "tags": ["new"]}, format="json")
    assert put.status_code == 200
    assert put.json()["body"] == "New body"
    assert put.json()["tags"] == ["new"]
    patch = client.patch(f"{POSTS}draft-one/", {"status": "published"}, format="json")
    assert patch.status_code == 200
    assert patch.json()["published_at"] is not None
    assert patch.json()["tags"] == ["new"]
    invalid = client.put(f"{POSTS}draft-one/", {"title": "Only a title"}, format="json")
    assert invalid.status_code == 400
    assert set(invalid.json()) == {"body"}


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_only_author_or_staff_may_change_a_post(
    client_for: ClientFor, alice: User, bob: User, staff: User, make_post, method: str
) -> None:
    make_post(alice, title="Owned")
    url = f"{POSTS}owned/"
    payload = {"title": "Changed", "body": "Changed"}
    assert getattr(client_for(None), method)(url, payload, format="json").status_code == 401
    forbidden = getattr(client_for(bob), method)(url, payload, format="json")
    assert forbidden.status_code == 403
    assert forbidden.json() == {"detail": "Only the author or staff may change this."}
    allowed = getattr(client_for(staff), method)(url, payload, format="json")
    assert allowed.status_code == (204 if method == "delete" else 200)


def test_author_deletes_post(client_for: ClientFor, alice: User, make_post) -> None:
    make_post(alice, title="Gone soon")
    assert client_for(alice).delete(f"{POSTS}gone-soon/").status_code == 204
    assert not Post.objects.exists()
    assert client_for(alice).delete(f"{POSTS}gone-soon/").status_code == 404


def test_cache_control_public_only_for_anonymous_lists(client_for: ClientFor, alice: User, make_post) -> None:
    make_post(alice, title="Cached")
    anon_list = client_for(None).get(POSTS)
    assert anon_list["Cache-Control"] == "public, max-age=60, s-maxage=60"
    assert "Authorization" in anon_list["Vary"]
    assert client_for(alice).get(POSTS)["Cache-Control"] == "private, no-store"
    assert client_for(None).get(f"{POSTS}cached/")["Cache-Control"] == "private, no-store"
    assert client_for(None).get(f"{POSTS}missing/")["Cache-Control"] == "private, no-store"
