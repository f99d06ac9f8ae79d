"""Request metrics: the store, its collectors, and the JSON and Prometheus renderers."""
