"""Serializers for posts, comments, tags and registration."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.text import slugify
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.validators import UniqueValidator

from blog.models import Comment, Post, Tag

#: A post may carry at most this many tags.
MAX_TAGS = 10

User = get_user_model()


class TagSerializer(serializers.ModelSerializer):
    """A tag with the number of published posts filed under it."""

    post_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Tag
        fields = ["name", "slug", "post_count"]


class TagNameField(serializers.CharField):
    """A tag written and read by its name; an unknown name creates the tag."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=50, **kwargs)

    def to_representation(self, value: Any) -> str:
        return str(value.name)

    def to_internal_value(self, data: Any) -> str:
        name = str(super().to_internal_value(data)).strip()
        if not slugify(name):
            raise serializers.ValidationError("A tag needs at least one letter or digit.")
        return name


class TagListField(serializers.ListField):
    """The post's tags as a list of names."""

    def to_representation(self, data: Any) -> list[str]:
        return [tag.name for tag in data.all()]


class PostSerializer(serializers.ModelSerializer):
    """A post; ``tags`` is a list of tag names."""

    author = serializers.CharField(source="author.username", read_only=True)
    tags = TagListField(child=TagNameField(), required=False, max_length=MAX_TAGS)
    comment_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = Post
        fields = [
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
        ]
        read_only_fields = ["slug", "created_at", "updated_at", "published_at"]

    def validate_title(self, value: str) -> str:
        if not slugify(value):
            raise serializers.ValidationError("The title needs at least one letter or digit.")
        return value

    def _set_tags(self, post: Post, names: list[str]) -> None:
        tags = []
        for name in dict.fromkeys(names):
            tag = Tag.objects.filter(name__iexact=name).first() or Tag.objects.create(name=name)
            tags.append(tag)
        post.tags.set(tags)

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> Post:
        names = validated_data.pop("tags", [])
        post = super().create(validated_data)
        self._set_tags(post, names)
        return post

    @transaction.atomic
    def update(self, instance: Post, validated_data: dict[str, Any]) -> Post:
        names = validated_data.pop("tags", None)
        post = super().update(instance, validated_data)
        if names is not None:
            self._set_tags(post, names)
        return post


class CommentSerializer(serializers.ModelSerializer):
    """A comment on a post."""

    author = serializers.CharField(source="author.username", read_only=True)

    class Meta:
        model = Comment
        fields = ["id", "author", "body", "created_at"]
        read_only_fields = ["id", "created_at"]


class RegistrationSerializer(serializers.Serializer):
    """A new account: username, optional email, and a password that passes Django's validators."""

    username = serializers.RegexField(
        r"^[\w.@+-]+\Z",
        max_length=150,
        validators=[UniqueValidator(queryset=User.objects.all(), message="This username is taken.")],
    )
    email = serializers.EmailField(required=False, allow_blank=True)
    password = serializers.CharField(write_only=True, trim_whitespace=False, style={"input_type": "password"})

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        candidate = User(username=attrs["username"], email=attrs.get("email", ""))
        try:
            validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": exc.messages}) from exc
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Any:
        user = User.objects.create_user(
            username=validated_data["username"],
            email=validated_data.get("email", ""),
            password=validated_data["password"],
        )
        Token.objects.create(user=user)
        return user

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return {"username": instance.username, "email": instance.email, "token": instance.auth_token.key}
