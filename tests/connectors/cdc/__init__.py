"""Tests of the CDC adapter."""
