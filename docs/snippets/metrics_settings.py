# settings.py, below startproject's MIDDLEWARE
MIDDLEWARE = [
    "django_prodkit.middleware.RequestIDMiddleware",
    "django_prodkit.middleware.AccessLogMiddleware",
    "django_prodkit.middleware.HealthCheckMiddleware",
    "django_prodkit.middleware.MetricsMiddleware",  # high up, so its duration covers the rest
    *MIDDLEWARE,  # Django's own: security, sessions, common, CSRF, auth...
]

PRODKIT = {
    "METRICS_TOKENS": ["a-long-random-token"],  # or PRODKIT_METRICS_TOKENS=token1,token2 in the environment
}
