"""The blog API's routes, mounted under ``/api/v1/``."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from blog import views

app_name = "blog"

# path() routes with converters (not regexes): they read well as the route label in metrics and access logs,
# e.g. "/api/v1/posts/<slug:slug>/".
router = SimpleRouter(use_regex_path=False)
router.register("posts", views.PostViewSet, basename="post")
router.register("tags", views.TagViewSet, basename="tag")
router.register("posts/<slug:post_slug>/comments", views.CommentViewSet, basename="comment")

urlpatterns = [
    path("", include(router.urls)),
    path("auth/token/", views.TokenView.as_view(), name="token"),
    path("auth/register/", views.RegistrationView.as_view(), name="register"),
]
