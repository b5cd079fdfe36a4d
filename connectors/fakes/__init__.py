"""Test doubles of the ERP and CRM HTTP APIs (real servers on loopback), reused by the demo."""

from connectors.fakes.api import Call, FakeApis, create_fake_app
from connectors.fakes.server import ServerThread

__all__ = ["Call", "FakeApis", "ServerThread", "create_fake_app"]
