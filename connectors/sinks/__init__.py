"""Outbound sinks: commands.erp.* and commands.crm.* to the ERP and CRM HTTP APIs."""

from connectors.sinks.breaker import CircuitBreaker
from connectors.sinks.contract import COMMAND_TOPICS, HttpCall, build_request, outcome_event
from connectors.sinks.sink import CommandSink, SinkTarget

__all__ = [
    "COMMAND_TOPICS",
    "CircuitBreaker",
    "CommandSink",
    "HttpCall",
    "SinkTarget",
    "build_request",
    "outcome_event",
]
