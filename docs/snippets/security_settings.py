# settings.py
from django_prodkit.settings import security_hardening, session_hardening

globals().update(session_hardening())
globals().update(security_hardening(behind_proxy=True))  # App Runner, an ALB or CloudFront terminates TLS
