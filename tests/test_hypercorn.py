"""hypercorn (``--worker-class trio``) serving an ASGI app on trio_uring, under load.

hypercorn is code we don't own: it runs on io_uring because
``TRIO_URING_INSTALL=1`` in its environment installs the switch at
start-up (the ``.pth`` hook). (hypercorn makes its listening sockets with
the stdlib and wraps them with ``trio.socket.from_stdlib_socket``, which
Trio's factory hook does not reach: its sockets take Trio's readiness path
on our manager; see docs/sockets.md.) The app reports what it runs on, and
every response under load is checked (status and body), by wrk with a Lua
checker when wrk is installed and by our own C generator
(``benchmarks/http_load.c``, compiled on demand) otherwise; the C
generator is also run on its own so it cannot rot on machines with wrk.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = """
import json
import trio
import trio_uring.socket

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/stats":
        stats = trio_uring.socket.statistics()
        body = json.dumps({
            "backend": trio.lowlevel.current_statistics().io_statistics.backend,
            "ops": stats.ops, "direct": stats.direct, "sockets": stats.sockets,
            "multishot_accepted": stats.multishot_accepted,
        }).encode()
    else:
        await trio.sleep(0)  # a checkpoint, as real handlers have
        body = b"hello " + scope["path"].encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""

WRK_CHECKER = """
local expected = "hello /load"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0 end
function response(status, headers, body)
  if status == 200 and body == expected then ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local total_ok, total_bad = 0, 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok"); total_bad = total_bad + t:get("bad")
  end
  io.write(string.format("checked ok=%d bad=%d errors=%d\\n", total_ok, total_bad,
    summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def hypercorn(tmp_path: Path) -> Iterator[int]:
    (tmp_path / "uring_app.py").write_text(APP)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_URING")}
    env.update(TRIO_URING_INSTALL="1", PYTHONPATH=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "hypercorn", "--worker-class", "trio",
         "--bind", f"127.0.0.1:{port}", "uring_app:app"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "hypercorn did not start listening"
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stats(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as resp:
        assert resp.status == 200
        result: dict[str, object] = json.loads(resp.read())
        return result


def c_generator(tmp_path: Path) -> Path:
    binary = tmp_path / "http_load"
    subprocess.run(
        ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-o", str(binary),
         str(ROOT / "benchmarks" / "http_load.c")],
        check=True,
    )  # fmt: skip
    return binary


def load_with_c(tmp_path: Path, port: int, connections: int, requests: int) -> None:
    proc = subprocess.run(
        [str(c_generator(tmp_path)), "127.0.0.1", str(port), "/load", str(connections),
         str(requests), "hello /load"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    total = connections * requests
    assert proc.stdout.strip() == (
        f"requests={total} ok={total} bad_status=0 bad_body=0 errors=0"
    ), proc.stderr
    assert proc.returncode == 0


def load_with_wrk(wrk: str, tmp_path: Path, port: int) -> None:
    script = tmp_path / "check.lua"
    script.write_text(WRK_CHECKER)
    proc = subprocess.run(
        [wrk, "-t2", "-c50", "-d3s", "-s", str(script), f"http://127.0.0.1:{port}/load"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"checked ok=(\d+) bad=(\d+) errors=(\d+)", proc.stdout)
    assert match, proc.stdout
    ok, bad, errors = (int(g) for g in match.groups())
    assert ok > 1000
    assert (bad, errors) == (0, 0), proc.stdout


def test_hypercorn_on_trio_uring_under_load(hypercorn: int, tmp_path: Path) -> None:
    before = stats(hypercorn)
    assert before["backend"] == "io_uring"
    wrk = shutil.which("wrk")
    if wrk is not None:
        load_with_wrk(wrk, tmp_path, hypercorn)
    else:
        load_with_c(tmp_path, hypercorn, connections=50, requests=200)
    assert stats(hypercorn)["backend"] == "io_uring"


def test_hypercorn_with_our_c_generator(hypercorn: int, tmp_path: Path) -> None:
    load_with_c(tmp_path, hypercorn, connections=40, requests=100)
    assert stats(hypercorn)["backend"] == "io_uring"
