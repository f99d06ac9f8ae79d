from __future__ import annotations

from django.urls import include, path

from tests import views, views_db

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
    path("db/three/", views_db.three_queries, name="db-three"),
    path("db/n-plus-one/", views_db.n_plus_one, name="db-n-plus-one"),
    path("db/raw/", views_db.raw_queries, name="db-raw"),
    path("db/two-databases/", views_db.two_databases, name="db-two-databases"),
    path("db/slow/", views_db.slow_query, name="db-slow"),
    path("db/async/", views_db.async_queries, name="db-async"),
    path("db/parallel/", views_db.parallel_queries, name="db-parallel"),
    path("traced-work/", views.traced_work, name="traced-work"),
    path("call-out/async/", views.acall_out, name="acall-out"),
    path("call-out/<str:client>/", views.call_out, name="call-out"),
    path("async-wait/", views.async_wait, name="async-wait"),
    path("hangs/", views.hangs, name="hangs"),
    path("db/literals/", views_db.literals, name="db-literals"),
]

urlpatterns = [
    path("api/v1/", include(api)),
    path("api/v1/", include("django_prodkit.urls")),
]
