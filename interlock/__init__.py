"""Interlock: interlock."""
