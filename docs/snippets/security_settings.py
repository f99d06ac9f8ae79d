# settings.py
from django_prodkit.settings import security_hardening, session_hardening

globals().update(session_hardening())
globals().update(security_hardening(behind_proxy=True))  # App Runner, an ALB or CloudFront terminates TLS
# Django's deploy check asks for HSTS includeSubDomains and preload (security.W005, W021); both are opt-in
# here (docs/security.md, "Subdomains and preload are opt-in"): silence them once you have decided against.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
