"""Interlock: connectors."""
