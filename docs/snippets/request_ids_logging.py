# settings.py
from django_prodkit.logging import configure_logging

LOGGING = configure_logging(fmt="json", level="INFO")
