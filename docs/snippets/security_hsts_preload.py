# settings.py, after a week without complaints at each step of the ramp-up
from django_prodkit.settings import security_hardening

globals().update(
    security_hardening(behind_proxy=True, hsts_include_subdomains=True, hsts_preload=True, SECURE_HSTS_SECONDS=31536000)
)
