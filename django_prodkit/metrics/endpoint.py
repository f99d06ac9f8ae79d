"""The metrics endpoint behind ``django_prodkit.views.metrics``: access, format, snapshot, response."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from django_prodkit.conf import get_config
from django_prodkit.metrics import render
from django_prodkit.metrics.auth import Access, authorize
from django_prodkit.metrics.snapshot import build_snapshot
from django_prodkit.metrics.store import get_store
from django_prodkit.metrics.workers import metrics_mode

WWW_AUTHENTICATE = 'Bearer realm="metrics"'
INVALID_TOKEN = 'Bearer realm="metrics", error="invalid_token"'  # noqa: S105 - a header value, not a secret


def serve(request: HttpRequest) -> HttpResponse:
    """Answer with the metrics as JSON or Prometheus text, or with 401/403/400."""
    access = authorize(request)
    if access is Access.MISSING:
        response: HttpResponse = JsonResponse({"detail": "Authentication required."}, status=401)
        response["WWW-Authenticate"] = WWW_AUTHENTICATE
        return response
    if access is Access.DENIED:
        response = JsonResponse({"detail": "Not allowed to read metrics."}, status=403)
        if "HTTP_AUTHORIZATION" in request.META:
            response["WWW-Authenticate"] = INVALID_TOKEN
        return response
    accept = request.META.get("HTTP_ACCEPT", "")
    fmt = render.negotiate(request.GET.get("format"), accept)
    if fmt is None:
        return JsonResponse({"detail": f"format must be one of {', '.join(render.FORMATS)}."}, status=400)
    store = get_store()
    families = store.families()
    mode, warning = metrics_mode(store.multiprocess)
    if fmt == render.JSON:
        top = get_config()["METRICS_TOP_ENDPOINTS"]
        snapshot = build_snapshot(families, store.started_at, top=top, mode=mode, warning=warning)
        body, content_type = render.render_json(snapshot)
    else:
        families = [*families, *render.about_families(store.started_at, mode, warning)]
        instance = get_config()["METRICS_INSTANCE"]
        body, content_type = render.render_prometheus(families, fmt, accept, instance)
    response = HttpResponse(body, content_type=content_type)
    response["Vary"] = "Accept, Authorization, Cookie"
    return response
