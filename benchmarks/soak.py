"""Soak: hypercorn on trio_uring for minutes under well-behaved, rude and slow clients.

Usage: ``python benchmarks/soak.py [--seconds 600] [--interval S]`` (``make soak``;
``SOAK_SECONDS=60 make soak`` for a short run).

hypercorn (``--worker-class trio --workers 0``, so the server is the one
process we watch) serves a small ASGI app from a temp dir, on io_uring
through ``TRIO_URING_INSTALL=raise`` (a run that cannot have io_uring fails
instead of soaking stock Trio). The load runs in this process, in threads
with blocking sockets:

- well-behaved clients: a closed loop of keep-alive ``GET /hello`` (and
  every tenth a 256 KiB ``GET /big``), each response's status and body
  checked; their latencies give each interval's p50/p99;
- rude clients: each round picks one of: close mid-request (half the
  request line sent), close mid-response (a few KiB of ``/big`` read),
  either with an RST (``SO_LINGER`` 0) half the time;
- slow clients: dribble the request a byte at a time, or read ``/big``
  4 KiB at a time with pauses; their responses are checked too.

Every interval the soak samples the server's VmRSS and open fds from
``/proc``, and the counts and latencies of the interval; the table is the
curve. The verdict (``soak_verdict.judge``) decides; exit status 1 when it
fails. The latencies are measured in Python threads on a shared machine:
they include the generator's own scheduling, which is why the p99 check
compares the run with itself rather than with a fixed figure.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soak_verdict import Sample, judge

BIG = 256 * 1024
APP = f"""
import trio

BIG_CHUNK = b"x" * 16384

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({{"type": "lifespan.startup.complete"}})
            elif message["type"] == "lifespan.shutdown":
                await send({{"type": "lifespan.shutdown.complete"}})
                return
    path = scope["path"]
    if path == "/backend":
        body = trio.lowlevel.current_statistics().io_statistics.backend.encode()
    elif path == "/big":
        await send({{"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"{BIG}")]}})
        for _ in range({BIG} // 16384):
            await send({{"type": "http.response.body", "body": BIG_CHUNK,
                        "more_body": True}})
        await send({{"type": "http.response.body", "body": b""}})
        return
    else:
        await trio.sleep(0)  # a checkpoint, as real handlers have
        body = b"hello " + path.encode()
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]}})
    await send({{"type": "http.response.body", "body": body}})
"""
TIMEOUT = 15.0


class Counters:
    """What the clients did during the current interval; ``swap`` hands it over."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._reset()
        self.errors: list[str] = []

    def _reset(self) -> None:
        self.ok = self.failed = self.status_5xx = self.rude = self.slow_ok = 0
        self.latencies: list[float] = []

    def swap(self) -> tuple[int, int, int, int, int, list[float]]:
        """Return this interval's counts and latencies and start a new interval."""
        with self.lock:
            out = (self.ok, self.failed, self.status_5xx, self.rude, self.slow_ok)
            lat = self.latencies
            self._reset()
        return (*out, lat)

    def fail(self, what: str) -> None:
        """Count one failed legitimate request, keeping the first few reasons."""
        with self.lock:
            self.failed += 1
            if len(self.errors) < 10:
                self.errors.append(what)


class Response:
    """One HTTP/1.1 response: its status, its body, and whether the server closes after it."""

    def __init__(self, status: int, body: bytes, closes: bool) -> None:
        self.status = status
        self.body = body
        self.closes = closes


def read_response(sock: socket.socket, pause: float = 0.0) -> Response:
    """Read one HTTP/1.1 response with a Content-Length; ``pause`` between 4 KiB reads."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("EOF in headers")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    closes = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"connection":
            closes = value.strip().lower() == b"close"
    parts = [body]
    got = len(body)
    while got < length:
        if pause:
            time.sleep(pause)
        chunk = sock.recv(min(4096, length - got))
        if not chunk:
            raise ConnectionError(f"EOF in body at {got}/{length}")
        parts.append(chunk)
        got += len(chunk)
    return Response(status, b"".join(parts), closes)


def request(path: str) -> bytes:
    """The bytes of a keep-alive GET for ``path``."""
    return f"GET {path} HTTP/1.1\r\nHost: soak\r\n\r\n".encode()


def check(counters: Counters, response: Response, path: str) -> bool:
    """Count a 5xx; return whether status and body are the expected ones."""
    status, body = response.status, response.body
    if status >= 500:
        with counters.lock:
            counters.status_5xx += 1
    expected = b"x" * BIG if path == "/big" else b"hello " + path.encode()
    return status == 200 and body == expected


def well_behaved(port: int, counters: Counters, stop: threading.Event, seed: int) -> None:
    """A closed loop of checked keep-alive requests; reconnects after a failure."""
    rng = random.Random(seed)
    sock: socket.socket | None = None
    n = 0
    while not stop.is_set():
        path = "/big" if n % 10 == 9 else f"/hello{n % 7}"
        n += 1
        start = time.perf_counter()
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            sock.sendall(request(path))
            response = read_response(sock)
        except OSError as exc:
            counters.fail(f"{path}: {exc!r}")
            if sock is not None:
                sock.close()
            sock = None
            continue
        elapsed = (time.perf_counter() - start) * 1000
        if check(counters, response, path):
            with counters.lock:
                counters.ok += 1
                counters.latencies.append(elapsed)
        else:
            counters.fail(f"{path}: status {response.status}, {len(response.body)} bytes")
        if response.closes:
            # hypercorn ends a keep-alive connection after keep_alive_max_requests
            # (1000) with "Connection: close": a client that kept sending on it
            # would see EOF, through no fault of the server.
            sock.close()
            sock = None
        # A little think time: a soak, not a saturation test, so latency
        # measures the server, not the length of its queue.
        time.sleep(rng.uniform(0.001, 0.005))
    if sock is not None:
        sock.close()


def rude_or_slow(port: int, counters: Counters, stop: threading.Event, seed: int) -> None:
    """Each round one misbehaviour on a fresh connection; slow ones are checked."""
    rng = random.Random(seed)
    while not stop.is_set():
        kind = rng.choice(["mid_request", "mid_response", "dribble", "slow_read"])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
                if kind in ("mid_request", "mid_response") and rng.random() < 0.5:
                    # Linger 0: close() sends an RST instead of a FIN.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                if kind == "mid_request":
                    data = request("/hello")
                    sock.sendall(data[: rng.randrange(1, len(data) - 1)])
                    time.sleep(rng.uniform(0, 0.05))
                elif kind == "mid_response":
                    sock.sendall(request("/big"))
                    for _ in range(rng.randrange(0, 4)):
                        sock.recv(4096)
                elif kind == "dribble":
                    for byte in request("/hello"):
                        sock.sendall(bytes([byte]))
                        time.sleep(0.005)
                    if not check(counters, read_response(sock), "/hello"):
                        counters.fail("dribbled request: bad response")
                        continue
                else:
                    sock.sendall(request("/big"))
                    if not check(counters, read_response(sock, pause=0.002), "/big"):
                        counters.fail("slow reader: bad response")
                        continue
        except OSError as exc:
            if kind in ("dribble", "slow_read"):
                counters.fail(f"{kind}: {exc!r}")
            continue
        with counters.lock:
            if kind in ("dribble", "slow_read"):
                counters.slow_ok += 1
            else:
                counters.rude += 1


def proc_sample(pid: int) -> tuple[int, int]:
    """The server's VmRSS (KiB) and number of open fds, from /proc."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_server(workdir: Path, backend: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start hypercorn on ``backend`` from ``workdir``; return it and its port."""
    (workdir / "soak_app.py").write_text(APP)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_URING")}
    env.update(PYTHONPATH=str(workdir))
    if backend == "uring":
        env.update(TRIO_URING_INSTALL="raise")
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hypercorn", "--worker-class", "trio", "--workers", "0",
         "--bind", f"127.0.0.1:{port}", "soak_app:app"],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
                sock.sendall(request("/backend"))
                response = read_response(sock)
            expected = (200, b"io_uring" if backend == "uring" else b"epoll")
            if (response.status, response.body) != expected:
                raise SystemExit(f"server not on {backend}: {response.status} {response.body!r}")
            return proc, port
        except OSError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                log_text = (workdir / "server.log").read_text()
                raise SystemExit("hypercorn did not start:\n" + log_text) from exc
            time.sleep(0.2)


def main() -> int:
    """Run the soak, print the curve and the verdict; 1 if the verdict fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    parser.add_argument("--interval", type=float, default=0.0, help="default: seconds/30, >= 2")
    parser.add_argument("--clients", type=int, default=8, help="well-behaved clients")
    parser.add_argument("--rude", type=int, default=4, help="rude and slow clients")
    parser.add_argument(
        "--backend", choices=["uring", "stock"], default="uring",
        help="stock: the same soak on stock Trio (epoll), to compare",
    )  # fmt: skip
    args = parser.parse_args()
    interval = args.interval or max(2.0, args.seconds / 30)
    counters = Counters()
    stop = threading.Event()
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        proc, port = start_server(Path(tmp), args.backend)
        print(f"hypercorn pid {proc.pid} on port {port}, {args.backend}; {args.seconds:.0f} s, "
              f"interval {interval:.0f} s, {args.clients} well-behaved + {args.rude} rude/slow "
              f"clients", flush=True)  # fmt: skip
        threads = [
            threading.Thread(target=well_behaved, args=(port, counters, stop, i), daemon=True)
            for i in range(args.clients)
        ] + [
            threading.Thread(
                target=rude_or_slow, args=(port, counters, stop, 1000 + i), daemon=True
            )
            for i in range(args.rude)
        ]
        header = (f"{'t_s':>6} {'rss_MiB':>8} {'fds':>5} {'ok':>7} {'failed':>6} {'5xx':>4} "
                  f"{'rude':>5} {'slow':>5} {'p50_ms':>7} {'p99_ms':>7}")  # fmt: skip
        print(header, flush=True)
        begin = time.monotonic()
        for thread in threads:
            thread.start()
        alive = True
        try:
            while time.monotonic() - begin < args.seconds:
                time.sleep(interval - (time.monotonic() - begin) % interval)
                if proc.poll() is not None:
                    alive = False
                    print(f"server exited with {proc.returncode}", flush=True)
                    break
                rss, fds = proc_sample(proc.pid)
                ok, failed, s5xx, rude, slow, lat = counters.swap()
                s = Sample(time.monotonic() - begin, rss, fds, ok, failed, s5xx,
                           percentile(lat, 0.50), percentile(lat, 0.99), rude, slow)  # fmt: skip
                samples.append(s)
                print(f"{s.t:6.0f} {s.rss_kib / 1024:8.1f} {s.fds:5d} {s.ok:7d} {s.failed:6d} "
                      f"{s.status_5xx:4d} {s.rude:5d} {s.slow_ok:5d} {s.p50_ms:7.2f} "
                      f"{s.p99_ms:7.2f}", flush=True)  # fmt: skip
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=TIMEOUT + 5)
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log = (Path(tmp) / "server.log").read_text(errors="replace")
    verdict = judge(samples)
    if not alive:
        verdict.passed = False
        verdict.lines.append("FAIL the server died during the run")
    print("\n".join(verdict.lines))
    if counters.errors:
        print("first failures:", *counters.errors, sep="\n  ")
    tracebacks = log.count("Traceback")
    print(f"server log: {len(log.splitlines())} lines, {tracebacks} tracebacks")
    if tracebacks:
        print(log[-3000:])
    print("VERDICT:", "PASS" if verdict.passed else "FAIL")
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
