"""``manage.py seed_blog``: demo users, tags, posts and comments; running it again changes nothing."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from blog.models import Comment, Post, Tag

#: Named sizes: (users, posts, comments per post).
SIZES: dict[str, tuple[int, int, int]] = {
    "small": (3, 20, 2),
    "medium": (10, 200, 5),
    "large": (50, 2000, 10),
}
TAG_NAMES = ["django", "python", "devops", "aws", "observability", "performance", "security", "testing"]
WORDS = [
    "request",
    "latency",
    "metric",
    "trace",
    "log",
    "worker",
    "gunicorn",
    "cache",
    "database",
    "query",
    "index",
    "deploy",
    "container",
    "health",
    "readiness",
    "token",
    "tag",
    "draft",
    "publish",
    "review",
    "alarm",
    "dashboard",
    "percentile",
    "throughput",
]
#: A fixed seed so every run writes the same content (that is what makes the command idempotent).
RANDOM_SEED = 20260401


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


class Command(BaseCommand):
    help = "Create demo users, tags, posts and comments. Idempotent: existing demo rows are kept."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--size", choices=sorted(SIZES), default="small", help="Preset amount of data.")
        parser.add_argument("--users", type=int, help="Number of demo users (overrides --size).")
        parser.add_argument("--posts", type=int, help="Number of posts (overrides --size).")
        parser.add_argument("--comments", type=int, help="Comments per published post (overrides --size).")
        parser.add_argument(
            "--password",
            default="demo-password",
            help="Password of the demo users (demo1, demo2, ...). Never seed a production database.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        users, posts, comments = SIZES[options["size"]]
        users = options["users"] if options["users"] is not None else users
        posts = options["posts"] if options["posts"] is not None else posts
        comments = options["comments"] if options["comments"] is not None else comments
        if users < 1 or posts < 0 or comments < 0:
            raise CommandError("--users must be at least 1; --posts and --comments at least 0.")
        with transaction.atomic():
            created = self._seed(users, posts, comments, options["password"])
        self.stdout.write(
            self.style.SUCCESS(
                f"seed_blog: {users} users, {len(TAG_NAMES)} tags, {posts} posts, up to {comments} comments "
                f"per published post ({created} rows created)"
            )
        )

    def _seed(self, n_users: int, n_posts: int, n_comments: int, password: str) -> int:
        rng = random.Random(RANDOM_SEED)
        created = 0
        user_model = get_user_model()
        users = []
        for i in range(1, n_users + 1):
            user, new = user_model.objects.get_or_create(
                username=f"demo{i}", defaults={"email": f"demo{i}@example.com"}
            )
            if new:
                user.set_password(password)
                user.save(update_fields=["password"])
                created += 1
            Token.objects.get_or_create(user=user)
            users.append(user)
        tags = []
        for name in TAG_NAMES:
            tag, new = Tag.objects.get_or_create(name=name)
            created += new
            tags.append(tag)
        start = timezone.now() - timedelta(days=n_posts)
        existing = set(Post.objects.filter(slug__startswith="demo-post-").values_list("slug", flat=True))
        for i in range(1, n_posts + 1):
            # Draw every value even for existing posts so post N always gets the same content.
            author = rng.choice(users)
            title = f"Demo post {i}: {_sentence(rng, 4)[:-1]}"
            body = "\n\n".join(_sentence(rng, 25) for _ in range(3))
            status = Post.Status.DRAFT if i % 10 == 0 else Post.Status.PUBLISHED
            post_tags = rng.sample(tags, k=2)
            comment_texts = [(rng.choice(users), _sentence(rng, 12)) for _ in range(n_comments)]
            slug = f"demo-post-{i}"
            if slug in existing:
                continue
            created_at = start + timedelta(days=i)
            post = Post.objects.create(
                author=author, title=title, slug=slug, body=body, status=status, created_at=created_at
            )
            post.tags.set(post_tags)
            created += 1
            if status == Post.Status.PUBLISHED:
                Comment.objects.bulk_create(
                    Comment(post=post, author=who, body=text, created_at=created_at + timedelta(hours=j + 1))
                    for j, (who, text) in enumerate(comment_texts)
                )
                created += len(comment_texts)
        return created
