"""The stress suite's channels: one end of a socket pair, a pipe or a file, per backend.

A channel carries one payload from a writer end to a reader end. On the
``"uring"`` backend an end is a raw fd moved by ``trio_uring.lowlevel``'s
native ops; on ``"stock"`` it is what stock Trio offers for the same
transport. Every end does single operations (one receive, one send), so
that a cancel can land on each of them.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Literal

import attrs
import trio

Backend = Literal["stock", "uring"]


class Endpoint:
    """One end of a channel, with the backend's single-operation I/O."""

    async def receive(self, n: int) -> bytes:
        """Receive up to ``n`` bytes (b"" at end of stream)."""
        raise NotImplementedError

    async def send(self, data: memoryview) -> int:
        """Send some of ``data``; return how many bytes went."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close the fd."""
        raise NotImplementedError


@attrs.define
class NativeEndpoint(Endpoint):
    """A raw fd moved by ``trio_uring.lowlevel`` ops (the ``"uring"`` backend)."""

    fd: int
    kind: str

    async def receive(self, n: int) -> bytes:
        from .. import lowlevel

        if self.kind == "socket":
            return await lowlevel.recv(self.fd, n)
        return await lowlevel.read(self.fd, n)

    async def send(self, data: memoryview) -> int:
        from .. import lowlevel

        if self.kind == "socket":
            return await lowlevel.send(self.fd, data)
        return await lowlevel.write(self.fd, data)

    async def aclose(self) -> None:
        os.close(self.fd)


@attrs.define
class TrioSocketEndpoint(Endpoint):
    """A ``trio.socket`` socket (the ``"stock"`` backend)."""

    sock: trio.socket.SocketType

    async def receive(self, n: int) -> bytes:
        return await self.sock.recv(n)

    async def send(self, data: memoryview) -> int:
        return await self.sock.send(data)

    async def aclose(self) -> None:
        self.sock.close()


@attrs.define
class TrioPipeEndpoint(Endpoint):
    """A pipe end moved as Trio moves an fd (the ``"stock"`` backend)."""

    # Trio's own pattern for an fd: try the non-blocking call, wait for
    # readiness on EAGAIN. A cancel lands only while waiting, so it never
    # loses data.
    fd: int

    async def receive(self, n: int) -> bytes:
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            try:
                data = os.read(self.fd, n)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self.fd)
            else:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return data

    async def send(self, data: memoryview) -> int:
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            try:
                sent = os.write(self.fd, data)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self.fd)
            else:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return sent

    async def aclose(self) -> None:
        trio.lowlevel.notify_closing(self.fd)
        os.close(self.fd)


@attrs.define
class TrioFileEndpoint(Endpoint):
    """A file from ``trio.open_file`` (the ``"stock"`` backend)."""

    file: Any  # trio's AsyncIOWrapper around an unbuffered binary file

    async def receive(self, n: int) -> bytes:
        data: bytes = await self.file.read(n)
        return data

    async def send(self, data: memoryview) -> int:
        sent: int = await self.file.write(data)
        return sent

    async def aclose(self) -> None:
        await self.file.aclose()


async def open_channel(
    backend: Backend, kind: str, workdir: str, index: int
) -> tuple[Endpoint, Endpoint, str | None]:
    """A (writer end, reader end, file path or None) for one channel."""
    if kind == "socket":
        a, b = socket.socketpair()
        if backend == "uring":
            # Non-blocking, as trio.socket leaves them: io_uring waits for
            # readiness itself when a non-blocking attempt says EAGAIN.
            return NativeEndpoint(a.detach(), kind), NativeEndpoint(b.detach(), kind), None
        return (
            TrioSocketEndpoint(trio.socket.from_stdlib_socket(a)),
            TrioSocketEndpoint(trio.socket.from_stdlib_socket(b)),
            None,
        )
    if kind == "pipe":
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        if backend == "uring":
            return NativeEndpoint(w, kind), NativeEndpoint(r, kind), None
        return TrioPipeEndpoint(w), TrioPipeEndpoint(r), None
    path = os.path.join(workdir, f"file-{index}")
    if backend == "uring":
        wfd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        rfd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        return NativeEndpoint(wfd, kind), NativeEndpoint(rfd, kind), path
    wf = await trio.open_file(path, "wb", buffering=0)
    rf = await trio.open_file(path, "rb", buffering=0)
    return TrioFileEndpoint(wf), TrioFileEndpoint(rf), path
