"""The examples run as they are (so `make demo` cannot rot)."""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_demo_runs_both_backends() -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py"), "--seconds", "0.3", "--clients", "4"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = {line.split("  ")[0]: line.split() for line in proc.stdout.splitlines() if line}
    assert lines["I/O backend"][-2:] == ["epoll", "io_uring"]
    round_trips = lines["echo round trips"][-2:]
    assert all(int(n.replace(",", "")) > 0 for n in round_trips)
    assert "trio_uring / stock" in proc.stdout


# -- the socket examples: started as they are, talked to on 127.0.0.1 --------


BANNER = re.compile(r"on 127\.0\.0\.1:(\d+) \((\w+), (\w+)\)")


@contextmanager
def server(name: str, stock: bool) -> Iterator[int]:
    """Start ``examples/NAME.py --port 0``; yield its port; stop it with Ctrl-C."""
    cmd = [sys.executable, str(EXAMPLES / name), "--port", "0", *(["--stock"] if stock else [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = BANNER.search(line)
        assert match, (line, proc.stderr.read() if proc.stderr and proc.poll() is not None else "")
        backend, kind = match.group(2), match.group(3)
        if stock:
            assert (backend, kind) == ("epoll", "_SocketType")
        else:
            assert (backend, kind) == ("io_uring", "NativeSocket")
        yield int(match.group(1))
    finally:
        proc.send_signal(2)  # SIGINT: the examples exit quietly on Ctrl-C
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def recv_line(sock: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        chunk = sock.recv(1)
        assert chunk, f"connection closed after {line!r}"
        line += chunk
    return line


STOCK = pytest.mark.parametrize("stock", [False, True], ids=["trio_uring", "stock"])


@STOCK
def test_echo_server(stock: bool) -> None:
    with server("echo_server.py", stock) as port:
        clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
        for i, c in enumerate(clients):
            payload = bytes([i]) * (100_000 + i)
            c.sendall(payload)
            assert recv_exactly(c, len(payload)) == payload
        for c in clients:
            c.shutdown(socket.SHUT_WR)
            assert c.recv(1) == b""  # the server closes its side after EOF
            c.close()


@STOCK
def test_chat_server_broadcasts(stock: bool) -> None:
    with server("chat_server.py", stock) as port:
        alice = socket.create_connection(("127.0.0.1", port), timeout=10)
        bob = socket.create_connection(("127.0.0.1", port), timeout=10)
        carol = socket.create_connection(("127.0.0.1", port), timeout=10)
        names = []
        for s in (alice, bob, carol):
            welcome = recv_line(s)
            assert welcome.startswith(b"welcome, you are user")
            names.append(welcome.split()[-1])
        alice.sendall(b"hi all\nsecond line\n")
        for s in (bob, carol):
            assert recv_line(s) == names[0] + b": hi all\n"
            assert recv_line(s) == names[0] + b": second line\n"
        carol.close()
        bob.sendall(b"bye\n")
        assert recv_line(alice) == names[1] + b": bye\n"
        alice.close()
        bob.close()


@STOCK
def test_http_server(stock: bool) -> None:
    with server("http_server.py", stock) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(3):  # one keep-alive connection, several requests
            conn.request("GET", "/")
            resp = conn.getresponse()
            assert (resp.status, resp.read()) == (200, b"hello\n")
        body = bytes(range(256)) * 1000
        conn.request("POST", "/echo", body=body)
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, body)
        conn.request("GET", "/missing")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (404, b"not found\n")
        conn.close()


@pytest.mark.parametrize(
    ("args", "manager"),
    [([], "io_uring"), (["--backend", "trio"], "epoll"), (["--install"], "io_uring")],
)
def test_anyio_program_selects_the_backend(args: list[str], manager: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_URING")}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "anyio_program.py"), "--clients", "3", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    )
    report = {line[:16].strip(): line[16:] for line in proc.stdout.splitlines()}
    assert report["sniffio says"] == "trio"
    assert report["I/O manager"] == manager
    assert report["round trips"] == "300"


@STOCK
def test_file_copy(stock: bool, tmp_path: Path) -> None:
    import hashlib

    src = tmp_path / "src"
    data = os.urandom(3 * 1024 * 1024 + 12345)
    src.write_bytes(data)
    dst = tmp_path / "dst"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "file_copy.py"), str(src), str(dst), "--chunk", "65536",
         *(["--stock"] if stock else [])],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert dst.read_bytes() == data
    lines = proc.stdout.splitlines()
    assert lines[0] == f"copied {len(data)} bytes ({'epoll' if stock else 'io_uring'})"
    assert lines[1] == f"sha256 {hashlib.sha256(data).hexdigest()}"
    assert lines[2] == "verified"
