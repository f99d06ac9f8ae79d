# settings.py
PRODKIT = {
    "SERVICE_NAME": "blog-api",
    "METRICS_TOKENS": ["a-long-random-token"],
}
