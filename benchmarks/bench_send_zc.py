"""``IORING_OP_SEND`` against ``IORING_OP_SEND_ZC`` on TCP over 127.0.0.1.

Issue 13 asks for zero-copy sends "where it measures faster". This is the
measurement, in the shape ``send_all`` would need. One op at a time runs
on the caller's buffer, with ``MSG_WAITALL`` as ours does. A zero-copy
send is done only when its second, notification CQE
(``IORING_CQE_F_NOTIF``) says the kernel has let go of the buffer; until
then ``send_all`` could not return, because the caller may reuse the
buffer after it.

The sender drives a ``Ring`` directly, with no Trio, so only the op
differs. A thread drains the other end with blocking ``recv_into``. Each
size runs ``--repeat`` rounds, with the two ops interleaved. Reported:
GiB/s and the process's CPU seconds per GiB (the draining thread
included), as medians, and the median of the per-round ratios
zero-copy / plain.

Usage: python benchmarks/bench_send_zc.py [--sizes 65536,1048576] [--mib 1024] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import threading
import time

from trio_uring._core.abi import OP
from trio_uring._core.ring import Ring, ffi

CQE_F_MORE = 1 << 1
CQE_F_NOTIF = 1 << 3


def measure(size: int, total: int, zero_copy: bool) -> tuple[float, float]:
    """Send ``total`` bytes in ``size`` chunks; return (GiB/s, CPU s per GiB)."""
    opcode = OP["SEND_ZC"] if zero_copy else OP["SEND"]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    tx = socket.create_connection(listener.getsockname())
    rx, _ = listener.accept()
    listener.close()
    received = [0]

    def drain() -> None:
        buf = bytearray(1 << 20)
        while received[0] < total:
            n = rx.recv_into(buf)
            if not n:
                return
            received[0] += n

    thread = threading.Thread(target=drain)
    thread.start()
    ring = Ring(64)
    payload = bytearray(os.urandom(size))
    cbuf = ffi.from_buffer(payload)  # pinned: alive until the function returns
    addr = int(ffi.cast("uintptr_t", cbuf))
    sent = waiting = 0
    user_data = 0
    cpu0, wall0 = os.times(), time.perf_counter()
    try:
        while sent < total or waiting:
            if sent < total and not waiting:
                user_data += 1
                # MSG_WAITALL, as send_all's op: the kernel sends all of it.
                ring.push(
                    opcode, tx.fileno(), user_data, addr=addr, length=size,
                    op_flags=socket.MSG_WAITALL,
                )  # fmt: skip
                waiting = 2 if zero_copy else 1  # the result, and ZC's notification
            events = ring.get_events(-1)
            if not events:
                continue
            for _, res, flags in zip(*events, strict=True):
                if flags & CQE_F_NOTIF:
                    waiting -= 1
                    continue
                if res < 0:
                    raise OSError(-res, os.strerror(-res))
                sent += res
                waiting -= 1
                if zero_copy and not flags & CQE_F_MORE:
                    waiting -= 1  # no notification follows
        thread.join()
    finally:
        wall = time.perf_counter() - wall0
        cpu1 = os.times()
        ring.close()
        tx.close()
        rx.close()
    if received[0] != total:
        raise RuntimeError(f"received {received[0]} of {total} bytes")
    gib = total / 2**30
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return gib / wall, cpu / gib


def main() -> None:
    """Run every size, both ops interleaved, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="65536,1048576")
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    total = args.mib << 20
    print(f"{'size':>8} {'op':8} {'GiB/s':>6} {'CPU s/GiB':>9} {'ZC / plain':>10}")
    for size in (int(s) for s in args.sizes.split(",")):
        plain: list[tuple[float, float]] = []
        zc: list[tuple[float, float]] = []
        for _ in range(args.repeat):
            plain.append(measure(size, total, zero_copy=False))
            zc.append(measure(size, total, zero_copy=True))
        ratio = statistics.median(z[0] / p[0] for z, p in zip(zc, plain, strict=True))
        for name, runs in (("SEND", plain), ("SEND_ZC", zc)):
            rate = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            shown = f"{ratio:>9.2f}x" if name == "SEND_ZC" else ""
            print(f"{size >> 10:>5} KiB {name:8} {rate:>6.2f} {cpu:>9.3f} {shown:>10}")


if __name__ == "__main__":
    main()
