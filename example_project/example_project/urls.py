"""URLs: the blog API and the prodkit endpoints under ``/api/v1/``, the admin, JSON error pages."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path

urlpatterns = [
    path("api/v1/", include("django_prodkit.urls")),
    path("api/v1/", include("blog.urls")),
    path("admin/", admin.site.urls),
]


def not_found(request: HttpRequest, exception: Exception) -> JsonResponse:
    """Unknown URLs answer JSON like the API's own 404s."""
    return JsonResponse({"detail": "Not found."}, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    """Unhandled errors answer JSON; the traceback goes to the log, never to the client."""
    return JsonResponse({"detail": "Internal server error."}, status=500)


def bad_request(request: HttpRequest, exception: Exception) -> JsonResponse:
    """Malformed requests (including a disallowed Host) answer JSON."""
    return JsonResponse({"detail": "Bad request."}, status=400)


def permission_denied(request: HttpRequest, exception: Exception) -> JsonResponse:
    """Requests Django itself refuses (CSRF, for example) answer JSON."""
    return JsonResponse({"detail": "Permission denied."}, status=403)


handler400 = bad_request
handler403 = permission_denied
handler404 = not_found
handler500 = server_error
