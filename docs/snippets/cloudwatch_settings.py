# settings.py, below startproject's MIDDLEWARE
MIDDLEWARE = [
    "django_prodkit.middleware.RequestIDMiddleware",
    "django_prodkit.middleware.AccessLogMiddleware",
    "django_prodkit.middleware.HealthCheckMiddleware",
    "django_prodkit.middleware.MetricsMiddleware",  # CloudWatch publishes what this middleware counts
    *MIDDLEWARE,
]
PRODKIT = {
    "SERVICE_NAME": "blog-api",
    "CLOUDWATCH": {
        "ENABLED": True,  # or ENABLE_CLOUDWATCH_METRICS=true in the environment
        "MODE": "emf",  # "emf" (default) or "api"
        "NAMESPACE": "Blog",
        "FLUSH_INTERVAL": 60,  # seconds
        "DIMENSIONS": {"Environment": "production"},
    },
}
