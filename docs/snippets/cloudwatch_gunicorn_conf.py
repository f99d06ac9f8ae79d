# gunicorn.conf.py
from django_prodkit.gunicorn import child_exit, on_exit, on_starting, worker_exit  # noqa: F401
