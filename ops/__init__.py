"""Interlock: ops."""
