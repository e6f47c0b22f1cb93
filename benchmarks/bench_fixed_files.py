"""Registered (fixed) files against plain fds, for the socket ops of the batched path.

Issue 13 asks for registered files "where a measurement shows it pays".
An op on a plain fd makes the kernel look the fd up and take a reference
to its file each time. With the file registered (``IORING_REGISTER_FILES``)
and ``IOSQE_FIXED_FILE`` on the SQE, it uses its own table instead.

The workload is the echo server's batched path, reduced to the ring. There
are ``--pairs`` connected Unix stream socket pairs. Each round sends 64
bytes one way on every pair and receives them, then the same the other
way: four ops per pair per round, every phase one ``io_uring_enter`` for
all pairs. It runs on a ``Ring`` directly, with no Trio, so only the fd
lookup differs. The registration is made with ``ctypes`` here: the
product does not register files (see ``docs/benchmarks.md``).

Reported: microseconds of process CPU per op, median of ``--repeat``
interleaved rounds each way, and the median of the per-round ratios.

Usage: python benchmarks/bench_fixed_files.py [--pairs 50] [--rounds 4000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import socket
import statistics

from trio_uring._core.abi import OP
from trio_uring._core.ring import Ring, ffi

IOSQE_FIXED_FILE = 1 << 0
IORING_REGISTER_FILES = 2
NR_IO_URING_REGISTER = 427
SIZE = 64


def register_files(ring: Ring, fds: list[int]) -> None:
    """``io_uring_register(IORING_REGISTER_FILES)``: slot i is ``fds[i]``."""
    libc = ctypes.CDLL(None, use_errno=True)
    table = (ctypes.c_int * len(fds))(*fds)
    ret = libc.syscall(NR_IO_URING_REGISTER, ring.fd, IORING_REGISTER_FILES, table, len(fds))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"io_uring_register(FILES): {os.strerror(err)}")


def measure(pairs: int, rounds: int, fixed: bool) -> float:
    """CPU microseconds per op over ``rounds`` rounds of echo on ``pairs`` pairs."""
    socks = [socket.socketpair() for _ in range(pairs)]
    ring = Ring(4 * pairs)
    fds = [s.fileno() for pair in socks for s in pair]
    if fixed:
        register_files(ring, fds)
    # The SQE's fd: the slot in the registered table, or the fd itself.
    target = list(range(len(fds))) if fixed else fds
    flags = IOSQE_FIXED_FILE if fixed else 0
    out = bytearray(b"x" * SIZE)
    inbox = [bytearray(SIZE) for _ in range(pairs)]
    # Pinned for the whole run: the cdata objects keep the memory alive.
    out_c = ffi.from_buffer(out)
    in_c = [ffi.from_buffer(b) for b in inbox]
    out_addr = int(ffi.cast("uintptr_t", out_c))
    in_addr = [int(ffi.cast("uintptr_t", c)) for c in in_c]
    ud = 0
    try:
        cpu0 = os.times()
        for _ in range(rounds):
            for direction in (0, 1):
                for i in range(pairs):
                    src, dst = target[2 * i + direction], target[2 * i + 1 - direction]
                    ud += 2
                    ring.push(OP["SEND"], src, ud, addr=out_addr, length=SIZE, sqe_flags=flags)
                    ring.push(
                        OP["RECV"], dst, ud + 1, addr=in_addr[i], length=SIZE, sqe_flags=flags
                    )
                done = 0
                while done < 2 * pairs:
                    events = ring.get_events(-1)
                    if not events:
                        continue
                    for res in events[1]:
                        if res != SIZE:
                            raise OSError(-res if res < 0 else 0, f"short or failed op: {res}")
                    done += len(events[0])
        cpu1 = os.times()
    finally:
        ring.close()
        for a, b in socks:
            a.close()
            b.close()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return cpu / (rounds * pairs * 4) * 1e6


def main() -> None:
    """Interleave plain and fixed rounds; print the medians and the paired ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    plain: list[float] = []
    fixed: list[float] = []
    for _ in range(args.repeat):
        plain.append(measure(args.pairs, args.rounds, fixed=False))
        fixed.append(measure(args.pairs, args.rounds, fixed=True))
    ratio = statistics.median(p / f for p, f in zip(plain, fixed, strict=True))
    print(f"{args.pairs} pairs x {args.rounds} rounds, {args.repeat} rounds each way")
    print(f"plain fds   : {statistics.median(plain):.3f} us CPU per op")
    print(f"fixed files : {statistics.median(fixed):.3f} us CPU per op")
    print(f"plain / fixed (paired median, > 1: fixed is cheaper): {ratio:.3f}x")


if __name__ == "__main__":
    main()
