# gunicorn.conf.py
from django_prodkit.gunicorn import child_exit, on_exit, on_starting, worker_exit  # noqa: F401

bind = "0.0.0.0:8000"
workers = 4
max_requests = 1000
max_requests_jitter = 100
