"""Declarative mapping files (YAML data shipped as package data)."""
