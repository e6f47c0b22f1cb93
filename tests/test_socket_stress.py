"""Cancellation stress on native sockets, many connections at once.

Every scenario runs on trio_uring with native sockets, and on stock Trio as
the control (the same invariants must hold there, or the test itself is
wrong). Seeds are fixed, so a failure can be replayed.

* ``receive_some`` and ``accept`` under random deadlines: every byte a
  client sent arrives exactly once and in order, and every connection is
  accepted exactly once (a lost accept would leave a client waiting).
* ``send_all`` under random deadlines: what Trio promises, the peer gets
  a prefix of what was sent, never a byte duplicated, reordered or
  corrupted, and at least everything whose ``send_all`` returned.
* A server shut down while clients are still connecting and sending:
  every client sees its data echoed, EOF or a reset; none hangs (each has a
  socket timeout far longer than the scenario needs).
* No fd is leaked by any scenario.
"""

from __future__ import annotations

import errno
import random
import socket as stdsocket
import threading
from functools import partial
from typing import Any

import pytest
import trio

import trio_uring
from trio_uring import socket as usocket
from trio_uring._sockets import socket as _socket

from .conftest import open_fds

SEEDS = [1, 2, 3]
DEADLINES = [0.0, 0.00002, 0.0001, 0.0005, 0.002, 0.01]


def run_on(backend: str, fn: Any) -> None:
    if backend == "native":
        before = usocket.statistics().ops
        trio_uring.run(fn)
        assert usocket.statistics().ops > before  # it really waited in native ops
    else:
        trio.run(fn)


def payload(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


@pytest.fixture(params=["native", "stock"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize(
    ("backend", "multishot"),
    [("native", True), ("native", False), ("stock", True)],
    ids=["native-multishot-accept", "native-single-shot-accept", "stock"],
)
@pytest.mark.parametrize("seed", SEEDS)
def test_receive_and_accept_exactly_once_under_random_deadlines(
    backend: str, seed: int, multishot: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_socket, "_multishot_accept", multishot)
    rng = random.Random(seed)
    clients = 100
    sent = {i: payload(rng, rng.randint(1, 48_000)) for i in range(clients)}
    received: dict[int, bytes] = {}
    accepted = 0
    port = 0
    fds_before = open_fds()

    async def handle(stream: trio.SocketStream, local: random.Random) -> None:
        buf = bytearray()
        async with stream:
            while True:
                with trio.move_on_after(local.choice(DEADLINES)):
                    data = await stream.receive_some(local.randint(1, 9000))
                    if not data:
                        break
                    buf += data  # recorded before the next checkpoint
            ident = int.from_bytes(buf[:4], "big")
            received[ident] = bytes(buf[4:])
            await stream.send_all(b"done")

    async def client(i: int) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            data = i.to_bytes(4, "big") + sent[i]
            pos = 0
            local = random.Random(seed * 1000 + i)
            while pos < len(data):
                step = local.randint(1, 6000)
                await stream.send_all(data[pos : pos + step])
                pos += step
                if local.random() < 0.3:
                    await trio.sleep(0)
            await stream.send_eof()
            reply = b""
            while len(reply) < 4:
                chunk = await stream.receive_some()
                assert chunk, "server closed without answering"
                reply += chunk
            assert reply == b"done"

    async def main() -> None:
        nonlocal accepted, port
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        listener = listeners[0]
        port = listener.socket.getsockname()[1]
        async with trio.open_nursery() as servers:

            async def accept_loop() -> None:
                nonlocal accepted
                local = random.Random(seed + 7)
                while True:
                    with trio.move_on_after(local.choice(DEADLINES)):
                        stream = await listener.accept()
                        accepted += 1  # recorded before the next checkpoint
                        servers.start_soon(handle, stream, random.Random(local.random()))

            servers.start_soon(accept_loop)
            with trio.fail_after(60):
                async with trio.open_nursery() as nursery:
                    for i in range(clients):
                        nursery.start_soon(client, i)
            servers.cancel_scope.cancel()
        await listener.aclose()

    run_on(backend, main)
    assert accepted == clients
    assert received == sent
    assert open_fds() == fds_before


@pytest.mark.parametrize("seed", SEEDS)
def test_send_all_under_random_deadlines_delivers_a_prefix(backend: str, seed: int) -> None:
    rng = random.Random(seed)
    connections = 50
    plans = {
        i: [payload(rng, rng.randint(1, 200_000)) for _ in range(4)] for i in range(connections)
    }
    completed: dict[int, int] = {}
    got: dict[int, bytes] = {}
    fds_before = open_fds()

    async def sender(i: int, stream: trio.SocketStream) -> None:
        local = random.Random(seed * 77 + i)
        done = 0
        async with stream:
            for chunk in plans[i]:
                with trio.move_on_after(local.choice(DEADLINES[1:])) as scope:
                    await stream.send_all(chunk)
                if scope.cancelled_caught:
                    break  # the stream's state is unknown now: only close it
                done += len(chunk)
        completed[i] = done

    async def receiver(i: int, stream: trio.SocketStream) -> None:
        buf = bytearray()
        async with stream:
            # A slow reader, so that sends really fill the buffer and wait.
            while data := await stream.receive_some(16384):
                buf += data
                if len(buf) % 5 == 0:
                    await trio.sleep(0.0005)
        got[i] = bytes(buf)

    async def main() -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for i in range(connections):
                    client = await trio.open_tcp_stream("127.0.0.1", port)
                    client.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_SNDBUF, 8192)
                    server = await listeners[0].accept()
                    nursery.start_soon(sender, i, client)
                    nursery.start_soon(receiver, i, server)
        for listener in listeners:
            await listener.aclose()

    run_on(backend, main)
    for i in range(connections):
        whole = b"".join(plans[i])
        assert got[i] == whole[: len(got[i])], f"connection {i}: not a prefix"
        assert len(got[i]) >= completed[i], f"connection {i}: a completed send_all lost data"
    assert any(completed[i] < len(b"".join(plans[i])) for i in range(connections))
    assert open_fds() == fds_before


def _client(port: int, ident: int, outcomes: list[str], lock: threading.Lock) -> None:
    data = random.Random(ident).randbytes(20_000)
    s = stdsocket.socket()
    s.settimeout(20)  # far more than the scenario takes: hitting it is a hang
    outcome = "?"
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(data)
        s.shutdown(stdsocket.SHUT_WR)
        echoed = bytearray()
        while chunk := s.recv(65536):
            echoed += chunk
        if echoed == data:
            outcome = "echoed"
        elif data.startswith(echoed):
            outcome = "eof"  # the server went away part way: EOF
        else:
            outcome = "corrupted"
    except (ConnectionResetError, BrokenPipeError):
        outcome = "reset"
    except ConnectionRefusedError:
        outcome = "refused"  # after the listener closed
    except TimeoutError:
        outcome = "hung"
    except OSError as exc:
        # shutdown() on a connection the server already reset says ENOTCONN.
        outcome = "reset" if exc.errno == errno.ENOTCONN else f"unexpected {exc!r}"
    finally:
        s.close()
    with lock:
        outcomes.append(outcome)


@pytest.mark.parametrize("seed", SEEDS)
def test_server_shut_down_while_clients_connect(backend: str, seed: int) -> None:
    rng = random.Random(seed)
    outcomes: list[str] = []
    lock = threading.Lock()
    threads: list[threading.Thread] = []
    fds_before = open_fds()

    async def echo(stream: trio.SocketStream) -> None:
        async for data in stream:
            await stream.send_all(data)
        await stream.send_eof()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, echo, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            for ident in range(60):
                t = threading.Thread(target=_client, args=(port, ident, outcomes, lock))
                t.start()
                threads.append(t)
                if rng.random() < 0.3:
                    await trio.sleep(rng.choice([0, 0.001, 0.005]))
            # Shut the server down with clients still connecting and sending.
            nursery.cancel_scope.cancel()

    run_on(backend, main)
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    assert len(outcomes) == 60
    assert set(outcomes) <= {"echoed", "eof", "reset", "refused"}, outcomes
    assert open_fds() == fds_before
