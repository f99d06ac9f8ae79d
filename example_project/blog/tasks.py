"""The blog's background tasks; django-prodkit gives their log lines the request id of the request that sent them."""

from __future__ import annotations

import logging

from celery import shared_task

from blog.models import Comment

logger = logging.getLogger("blog.tasks")


@shared_task(name="blog.notify_new_comment")
def notify_new_comment(comment_id: int) -> None:
    """Tell a post's author about a new comment (here a log line; in a real blog an email or a push)."""
    comment = Comment.objects.select_related("post", "author").filter(pk=comment_id).first()
    if comment is None:
        # Deleted before the worker got to it: nothing to say.
        logger.info("comment gone before notification", extra={"comment_id": comment_id})
        return
    logger.info(
        "notified the author of a new comment",
        extra={"comment_id": comment.pk, "post": comment.post.slug, "post_author_id": comment.post.author_id},
    )
