"""Query-string filters for the post list."""

from __future__ import annotations

import django_filters

from blog.models import Post


class PostFilter(django_filters.FilterSet):
    """``?author=<username>&tag=<slug>&status=<draft|published>``."""

    author = django_filters.CharFilter(field_name="author__username")
    tag = django_filters.CharFilter(field_name="tags__slug", distinct=True)
    status = django_filters.ChoiceFilter(choices=Post.Status.choices)

    class Meta:
        model = Post
        fields = ["author", "tag", "status"]
