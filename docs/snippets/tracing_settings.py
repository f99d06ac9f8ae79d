# settings.py, below startproject's MIDDLEWARE
MIDDLEWARE = [
    "django_prodkit.middleware.RequestIDMiddleware",
    "django_prodkit.middleware.AccessLogMiddleware",
    "django_prodkit.middleware.HealthCheckMiddleware",
    "django_prodkit.middleware.MetricsMiddleware",
    "django_prodkit.middleware.XRayMiddleware",  # after the request-id middleware, above Django's
    *MIDDLEWARE,
]
PRODKIT = {"SERVICE_NAME": "blog-api"}
