"""Posts, comments and tags."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.text import slugify

#: Longest slug we generate; leaves room for the ``-N`` suffix that keeps slugs unique.
SLUG_MAX_LENGTH = 220


def unique_slug(
    model: type[models.Model], text: str, *, exclude_pk: Any = None, max_length: int = SLUG_MAX_LENGTH
) -> str:
    """A slug for ``text`` that no other row of ``model`` has (``title``, ``title-2``, ...)."""
    base = slugify(text)[: max_length - 10] or model._meta.model_name
    taken = model._default_manager.filter(slug__startswith=base)  # type: ignore[attr-defined]
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    existing = set(taken.values_list("slug", flat=True))
    if base not in existing:
        return base
    suffix = 2
    while f"{base}-{suffix}" in existing:
        suffix += 1
    return f"{base}-{suffix}"


class Tag(models.Model):
    """A topic that posts are filed under."""

    name = models.CharField(max_length=50, unique=True)
    slug = models.SlugField(max_length=60, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.slug:
            # "C" and "C++" slugify alike; the suffix keeps both.
            self.slug = unique_slug(Tag, self.name, exclude_pk=self.pk, max_length=60)
        super().save(*args, **kwargs)


class PostQuerySet(models.QuerySet["Post"]):
    """Queries that respect who may see what."""

    def published(self) -> PostQuerySet:
        """Posts anyone may read."""
        return self.filter(status=Post.Status.PUBLISHED)

    def visible_to(self, user: Any) -> PostQuerySet:
        """Published posts plus, for a signed-in user, their own drafts."""
        if user is None or not user.is_authenticated:
            return self.published()
        return self.filter(models.Q(status=Post.Status.PUBLISHED) | models.Q(author=user))


class Post(models.Model):
    """A blog post; drafts are visible only to their author."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"

    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="posts")
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=SLUG_MAX_LENGTH, unique=True)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    tags = models.ManyToManyField(Tag, related_name="posts", blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)

    objects = PostQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "-created_at"])]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.slug:
            self.slug = unique_slug(Post, self.title, exclude_pk=self.pk)
        if self.status == Post.Status.PUBLISHED and self.published_at is None:
            self.published_at = timezone.now()
        super().save(*args, **kwargs)


class Comment(models.Model):
    """A reader's comment on a post."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="comments")
    body = models.TextField(max_length=5000)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.author} on {self.post}"
