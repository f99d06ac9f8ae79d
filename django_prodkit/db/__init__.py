"""Each request's database cost: queries counted and timed on every connection, published on the request's context.

The access line, the request's span and the metrics read the figures from :mod:`django_prodkit.context`;
:func:`current` gives them to your own code.
"""

from __future__ import annotations

from django_prodkit.db.counting import QueryStats, current, request_counter
from django_prodkit.db.shapes import repeated_shapes, sql_shape

__all__ = ["QueryStats", "current", "repeated_shapes", "request_counter", "sql_shape"]
