from __future__ import annotations

from django.urls import include, path

from tests import views

api = [
    path("hello/", views.hello, name="hello"),
    path("items/<slug:slug>/", views.item, name="item"),
    path("boom/", views.boom, name="boom"),
    path("exposed/", views.exposed, name="exposed"),
    path("exposed-id/", views.exposed_id, name="exposed-id"),
    path("vary-cookie/", views.vary_cookie, name="vary-cookie"),
    path("async/", views.async_hello, name="async-hello"),
    path("whoami/", views.whoami, name="whoami"),
    path("bad-request/", views.bad_request, name="bad-request"),
    path("slow/", views.slow, name="slow"),
    path("streamed/", views.streamed, name="streamed"),
    path("async-streamed/", views.async_streamed, name="async-streamed"),
    path("async-traced/<slug:slug>/", views.async_traced, name="async-traced"),
    path("traced-work/", views.traced_work, name="traced-work"),
    path("call-out/async/", views.acall_out, name="acall-out"),
    path("call-out/<str:client>/", views.call_out, name="call-out"),
]

urlpatterns = [
    path("api/v1/", include(api)),
    path("api/v1/", include("django_prodkit.urls")),
]
