"""The OpenTelemetry backend: spans over OTLP/HTTP to a collector, or SigV4-signed straight to X-Ray.

Importing this package imports nothing of OpenTelemetry; :mod:`.tracer` does, and is loaded only when
``OTEL.ENABLED`` (or ``ENABLE_OTEL``) turns the backend on.
"""
