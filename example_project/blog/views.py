"""The blog's API views: posts, comments, tags, tokens and registration."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils.cache import patch_cache_control, patch_vary_headers
from rest_framework import filters, generics, mixins, permissions, viewsets
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.throttling import ScopedRateThrottle

from blog.filters import PostFilter
from blog.models import Comment, Post, Tag
from blog.permissions import IsAuthorOrStaffOrReadOnly
from blog.serializers import CommentSerializer, PostSerializer, RegistrationSerializer, TagSerializer
from blog.tasks import notify_new_comment

#: How long a CDN (and browsers) may keep an anonymous list response.
PUBLIC_LIST_MAX_AGE = 60


class CDNCacheMixin:
    """Marks anonymous GET list responses cacheable for 60 s and everything else private.

    A signed-in user's list can include their drafts, so only anonymous lists are public; ``Vary:
    Authorization`` keeps a CDN that forwards the header from serving one user's page to another.
    """

    action: str | None

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        public = (
            request.method == "GET"
            and self.action == "list"
            and response.status_code == 200
            and not request.user.is_authenticated
        )
        if public:
            patch_cache_control(response, public=True, max_age=PUBLIC_LIST_MAX_AGE, s_maxage=PUBLIC_LIST_MAX_AGE)
        else:
            patch_cache_control(response, private=True, no_store=True)
        patch_vary_headers(response, ["Authorization"])
        return response


class PostViewSet(CDNCacheMixin, viewsets.ModelViewSet):
    """Posts: list, create, retrieve by slug, update, partial update, delete."""

    serializer_class = PostSerializer
    lookup_field = "slug"
    lookup_value_converter = "slug"
    permission_classes = [permissions.IsAuthenticatedOrReadOnly, IsAuthorOrStaffOrReadOnly]
    filterset_class = PostFilter
    filter_backends = [
        filters.SearchFilter,
        filters.OrderingFilter,
        *viewsets.ModelViewSet.filter_backends,
    ]
    search_fields = ["title", "body"]
    ordering_fields = ["created_at", "published_at", "title"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self) -> QuerySet[Post]:
        return (
            Post.objects.visible_to(self.request.user)
            .select_related("author")
            .prefetch_related("tags")
            .annotate(comment_count=Count("comments", distinct=True))
        )

    def perform_create(self, serializer: BaseSerializer) -> None:
        serializer.save(author=self.request.user)


class CommentViewSet(
    CDNCacheMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Comments of one post: list and create; the comment's author or staff may delete."""

    serializer_class = CommentSerializer
    lookup_value_converter = "int"
    permission_classes = [permissions.IsAuthenticatedOrReadOnly, IsAuthorOrStaffOrReadOnly]

    def get_post(self) -> Post:
        """The post named in the URL, if the user may see it (404 otherwise, drafts included)."""
        if not hasattr(self, "_post"):
            visible = Post.objects.visible_to(self.request.user)
            self._post = get_object_or_404(visible, slug=self.kwargs["post_slug"])
        return self._post

    def get_queryset(self) -> QuerySet[Comment]:
        return Comment.objects.filter(post=self.get_post()).select_related("author")

    def perform_create(self, serializer: BaseSerializer) -> None:
        comment = serializer.save(author=self.request.user, post=self.get_post())
        # After the commit, so a worker finds the comment; the task carries this request's id.
        transaction.on_commit(lambda: notify_new_comment.delay(comment.pk))


class TagViewSet(CDNCacheMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Tags with the number of published posts under each."""

    serializer_class = TagSerializer
    permission_classes = [permissions.AllowAny]

    def get_queryset(self) -> QuerySet[Tag]:
        published = Q(posts__status=Post.Status.PUBLISHED)
        return Tag.objects.annotate(post_count=Count("posts", filter=published, distinct=True)).order_by("name")


class TokenView(ObtainAuthToken):
    """``POST {"username", "password"}`` -> ``{"token"}``; send it as ``Authorization: Bearer <token>``."""

    # Password guessing is throttled per client address (the "auth" rate in REST_FRAMEWORK).
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    # Credentials are in the body; a stale Authorization header must not turn a login into a 401.
    authentication_classes: list[Any] = []


class RegistrationView(generics.CreateAPIView):
    """Create an account and return its API token."""

    serializer_class = RegistrationSerializer
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"
    authentication_classes: list[Any] = []
