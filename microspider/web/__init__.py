"""The dashboard (``microspider web``), its metrics and the alerts.

Importing this package loads nothing heavy: ``server`` (gevent's WSGI server),
``app`` (Jinja2, prometheus_client) and ``alerts`` are imported where used.
"""
