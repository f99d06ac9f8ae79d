from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from blog.models import Comment, Post, Tag
from django_prodkit.conf import reset_config


class HTTPSClient(APIClient):
    """The example is HTTPS-only outside DEBUG (plain http is redirected), so the tests speak https."""

    def generic(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["secure"] = True
        return super().generic(*args, **kwargs)


@pytest.fixture(autouse=True)
def _fresh_config() -> Iterator[None]:
    reset_config()
    cache.clear()  # the throttle counters live in the cache
    yield
    reset_config()


@pytest.fixture
def client_for(db: None) -> Callable[[User | None], APIClient]:
    """An API client, signed in with ``Authorization: Bearer <token>`` when given a user."""

    def make(user: User | None = None) -> APIClient:
        client = HTTPSClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
        return client

    return make


@pytest.fixture
def anon(client_for: Callable[[User | None], APIClient]) -> APIClient:
    return client_for(None)


@pytest.fixture
def alice(db: None) -> User:
    return User.objects.create_user("alice", "alice@example.com", "alice-password-123")


@pytest.fixture
def bob(db: None) -> User:
    return User.objects.create_user("bob", "bob@example.com", "bob-password-123")


@pytest.fixture
def staff(db: None) -> User:
    return User.objects.create_user("staffer", "staff@example.com", "staff-password-123", is_staff=True)


@pytest.fixture
def make_post(db: None) -> Callable[..., Post]:
    def make(
        author: User, title: str = "Hello world", status: str = "published", tags: tuple[str, ...] = (), **kw: Any
    ) -> Post:
        kw.setdefault("body", "Body text.")
        post = Post.objects.create(author=author, title=title, status=status, **kw)
        post.tags.set([Tag.objects.get_or_create(name=name)[0] for name in tags])
        return post

    return make


@pytest.fixture
def make_comment(db: None) -> Callable[..., Comment]:
    def make(post: Post, author: User, body: str = "Nice post.") -> Comment:
        return Comment.objects.create(post=post, author=author, body=body)

    return make
