"""Log lines: JSON or console lines with the unit of work's ids, and the one-line access log.

Users configure it through :mod:`django_prodkit.logging` (``configure_logging``); this package is behind it.
"""
