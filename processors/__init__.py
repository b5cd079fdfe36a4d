"""Interlock: processors."""
