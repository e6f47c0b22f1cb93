"""How a benchmark's echo server tells the driver that it listens, and on which port."""

from __future__ import annotations

import os


def report_ready(port: int, ready_file: str | None) -> None:
    """Report ``port``: atomically into ``ready_file``, or as ``READY <port>`` on stdout."""
    if ready_file is None:
        print(f"READY {port}", flush=True)
        return
    # Write then rename, so a poller never sees a half-written file.
    tmp = f"{ready_file}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, ready_file)
