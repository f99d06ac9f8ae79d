# settings.py, below startproject's MIDDLEWARE
MIDDLEWARE = [
    "django_prodkit.middleware.RequestIDMiddleware",
    "django_prodkit.middleware.AccessLogMiddleware",
    "django_prodkit.middleware.HealthCheckMiddleware",
    "django_prodkit.middleware.MetricsMiddleware",
    *MIDDLEWARE,  # Django's own, starting with SecurityMiddleware
]
