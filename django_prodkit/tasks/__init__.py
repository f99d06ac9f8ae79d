"""Background work: the request id, trace context and metrics carried into Celery and Django Tasks."""
