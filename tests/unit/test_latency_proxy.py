"""tests/latency_proxy.py: what it delays, and its process of its own (bench figure_distance)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.latency_proxy import LatencyProxy

REPO = Path(__file__).resolve().parents[2]


def _echo_server() -> socket.socket:
    """Answers each chunk with the same bytes at once, one connection at a time."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                while chunk := conn.recv(65536):
                    conn.sendall(chunk)

    threading.Thread(target=serve, daemon=True).start()
    return listener


def _round_trip(address: str, payload: bytes) -> tuple[bytes, float]:
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port))) as sock:
        started = time.monotonic()
        sock.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += sock.recv(65536)
        return got, time.monotonic() - started


def test_each_round_trip_costs_the_delay_in_order() -> None:
    listener = _echo_server()
    upstream = f"127.0.0.1:{listener.getsockname()[1]}"
    proxy = LatencyProxy(upstream, 0.05).start()
    try:
        got, took = _round_trip(proxy.address, b"ping" * 1000)
        assert got == b"ping" * 1000
        assert took >= 0.05
        direct, _ = _round_trip(upstream, b"x")
        assert direct == b"x"
    finally:
        proxy.close()
        listener.close()


def test_its_own_process_prints_each_address_and_ends_with_its_input() -> None:
    listener = _echo_server()
    upstream = f"127.0.0.1:{listener.getsockname()[1]}"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.latency_proxy", "0.05", upstream, upstream],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdin is not None
        addresses = [process.stdout.readline().strip() for _ in range(2)]
        assert len(set(addresses)) == 2
        for address in addresses:
            got, took = _round_trip(address, b"hello")
            assert (got, took >= 0.05) == (b"hello", True)
        process.stdin.close()
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
        listener.close()
