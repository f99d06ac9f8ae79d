"""Page-number pagination with a client-chosen, bounded page size."""

from __future__ import annotations

from rest_framework.pagination import PageNumberPagination


class BlogPagination(PageNumberPagination):
    """``?page=N&page_size=M``; at most 100 items a page."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
