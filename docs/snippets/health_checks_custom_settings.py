# settings.py
PRODKIT = {
    "HEALTH_CHECKS": ["myproject.health.s3_reachable"],
    "HEALTH_CHECK_TIMEOUT": 1.5,
}
