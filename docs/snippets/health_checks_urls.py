# urls.py
from django.urls import include, path

urlpatterns = [
    path("api/v1/", include("django_prodkit.urls")),
    # ...
]
