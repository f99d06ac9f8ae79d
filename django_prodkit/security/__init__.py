"""Session and security hardening: the settings helpers of :mod:`django_prodkit.settings` and their deploy checks."""
