"""Production operations for Django APIs: request IDs, logging, metrics, tracing, health checks."""

__version__ = "0.1.0"
