"""``up`` gives each service its own free port, even when the kernel offers one twice."""

from __future__ import annotations

import socket

import pytest

from interlock import brokerprocess, services
from interlock.brokerprocess import free_port

pytestmark = pytest.mark.unit


def test_a_free_port_is_never_given_to_two_services(monkeypatch: pytest.MonkeyPatch) -> None:
    # the kernel may offer a port again once the probe released it and before a service binds it
    offered = iter([41001, 41001, 41001, 41002])
    monkeypatch.setattr(brokerprocess, "reserve", lambda _host: next(offered))
    monkeypatch.setattr(brokerprocess, "_HANDED_OUT", set())
    assert services.reserve_port(0, "cdc metrics") == 41001
    assert services.reserve_port(0, "lag exporter metrics") == 41002


def test_free_ports_given_out_are_distinct() -> None:
    ports = [services.reserve_port(0) for _ in range(20)]
    assert len(set(ports)) == len(ports)


def test_a_free_port_is_kept_from_other_processes_until_its_server_binds_it() -> None:
    """The port is left in TIME_WAIT: a socket without SO_REUSEADDR, as the kernel's choice of a
    free port for another process, cannot have it; the server it is meant for can."""
    port = free_port()
    with socket.socket() as other, pytest.raises(OSError, match="Address already in use"):
        other.bind(("127.0.0.1", port))
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(1)
