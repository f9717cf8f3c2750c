"""A booted clean Debian 12 for the package tests, one per module."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.deploy.booted import BootedRoot, require_tools

PORTS = (9443, 9570, 9571,          # the shipped configurations' addresses
         9444, 9572, 9580, 9581)    # the second collector's and sensors' in test_package


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BootedRoot]:
    require_tools()
    for port in PORTS:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                pytest.fail(f"port {port} on loopback is taken: the booted root shares the "
                            f"host's network and its services listen there")
    root = BootedRoot(tmp_path_factory.mktemp("debian") / "root")
    try:
        yield root
    finally:
        root.stop()
