"""Who may change what: the author of a post or comment, or staff."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView


class IsAuthorOrStaffOrReadOnly(BasePermission):
    """Anyone may read; only the object's author or a staff user may change or delete it."""

    message = "Only the author or staff may change this."

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        user = request.user
        return bool(user and user.is_authenticated and (obj.author_id == user.pk or user.is_staff))
