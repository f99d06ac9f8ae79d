# urls.py
from django.urls import include, path

urlpatterns = [
    path("api/v1/", include("django_prodkit.urls")),  # /api/v1/metrics/ (and the health checks)
]
