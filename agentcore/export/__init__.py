"""Runs leave the SQLite file in open formats: OpenTelemetry traces (``agentcore.export.otel``).

Needs the ``otel`` extra (``pip install 'agentcore[otel]'``: ``opentelemetry-sdk`` and the OTLP/HTTP
exporter). ``agentcore.export.spans`` (ids, names, attributes) is pure and needs nothing extra.
"""
