# django-prodkit: add to urls.py
from django.urls import include

urlpatterns += [
    path("api/v1/", include("django_prodkit.urls")),  # healthcheck/, healthcheck/ready/, metrics/
]
