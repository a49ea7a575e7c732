"""The offline guarantee: the test suite runs with outbound network disabled (pytest-socket)."""
import socket

import pytest
import pytest_socket


def test_outbound_connections_are_blocked():
    # 192.0.2.1 is TEST-NET-1 (never routed); the guard must refuse before any packet is sent.
    with pytest.raises(pytest_socket.SocketConnectBlockedError, match="192.0.2.1"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)


def test_loopback_stays_open_for_multi_process_tests():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=5)
    conn, _ = server.accept()
    client.sendall(b"ok")
    assert conn.recv(2) == b"ok"
    for s in (client, conn, server):
        s.close()
