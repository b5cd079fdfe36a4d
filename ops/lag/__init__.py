"""Consumer lag exporter: offsets lag, time lag and Burrow-style group status, from outside.

Kept import-free so that mounting the command on the CLI stays cheap; the API lives in
``ops.lag.status`` (pure rules), ``ops.lag.probe`` (Kafka reads), ``ops.lag.exporter`` (metrics)
and ``ops.lag.cli`` (the command).
"""

__all__: list[str] = []
