"""``up`` gives each service its own free port, even when the kernel offers one twice."""

from __future__ import annotations

import pytest

from interlock import brokerprocess, services

pytestmark = pytest.mark.unit


def test_a_free_port_is_never_given_to_two_services(monkeypatch: pytest.MonkeyPatch) -> None:
    # the kernel may offer a port again once the probe released it and before a service binds it
    offered = iter([41001, 41001, 41001, 41002])
    monkeypatch.setattr(brokerprocess, "_probe_port", lambda _host: next(offered))
    monkeypatch.setattr(brokerprocess, "_HANDED_OUT", set())
    assert services.reserve_port(0, "cdc metrics") == 41001
    assert services.reserve_port(0, "lag exporter metrics") == 41002


def test_free_ports_given_out_are_distinct() -> None:
    ports = [services.reserve_port(0) for _ in range(20)]
    assert len(set(ports)) == len(ports)
