"""Argument parity: every public method against the stdlib (or stock Trio), case by case.

One table (``CASES``) of calls with good and bad arguments (negative sizes
other than -1, None, floats, bools, integers past 2**63, read-only,
released, cast or non-contiguous buffers, bad whence, modes, addresses and
flag types) on the surfaces of trio_uring:

* ``buffered``, ``unbuffered``, ``text``: a file from ``trio_uring.open_file``
  (``"r+b"``, ``"r+b"`` with ``buffering=0``, ``"r+"``), oracle: ``open()``
  with the same arguments; methods with no ``io`` counterpart (``pread``,
  ``preadinto``, ``pwrite``, ``fsync``, ``fdatasync``) take ``os.pread``,
  ``os.preadv``, ``os.pwrite``, ``os.fsync``, ``os.fdatasync`` on the
  oracle's fd;
* ``open_file``: ``trio_uring.open_file`` itself, oracle ``open()``;
* ``path``: ``trio_uring.Path``'s own methods, oracle ``pathlib.Path``;
* ``socket``, ``stream``, ``listener``: ``NativeSocket`` and
  ``trio.SocketStream``/``SocketListener`` over it, oracle the same calls on
  stock Trio's socket (``trio.socket.from_stdlib_socket``, whose argument
  checks are the stdlib socket's own), on both data paths;
* ``lowlevel``: ``trio_uring.lowlevel``, oracle the ``os``/``socket``/
  ``select`` call it mirrors (``read`` is ``os.read``/``os.pread``...).

Each case runs the oracle and ours, each on its own fresh copy of the same
fixture (file contents, directory tree, connected sockets with data
waiting), in the same test, and compares the outcomes:

* both returned: the values are equal (after ``_normalize``: buffers as
  bytes, paths as str, fds and sockets by kind, ``stat`` by mode and size),
  and so are the bytes left in every ``bytearray`` argument and, for files
  and paths, the file (tree) contents afterwards;
* both raised: the same exception class (``type(a) is type(b)``), for
  ``OSError`` the same errno, and a message *of the same kind*: equal after
  the fixture's directory is replaced by ``<root>``, or sharing at least one
  content word (``_words``: lower-cased words of three letters or more,
  minus generic ones such as "must", "object", "argument"; "integer" counts
  as "int"). So "'float' object cannot be interpreted as an integer" and
  "argument should be integer or None, not 'float'" are of a kind (both
  name the float and the integer); "embedded null byte" and "negative
  file descriptor" are not.

``test_cancelled_first`` (issue 14, item 2) runs every case of an *async*
method again inside an already cancelled scope, with stock Trio as the
oracle (``trio.open_file``, ``trio.Path``, Trio's socket and streams; the
``os`` extras through ``trio.to_thread.run_sync``, as Trio would run
them): both must raise ``trio.Cancelled``, or both the same exception class
(Trio's socket checks some addresses before its first checkpoint).

Where we keep a difference on purpose, ``KEPT`` names it (and which cases
it covers); ``docs/conformance.md`` has the same rows (checked). Such a case
is not skipped: it asserts what the oracle does (the stdlib's outcome, as
documented) and what we do instead (an exception class, or the outcome of
another surface's oracle, e.g. the unbuffered file's ``read1`` against the
buffered file's). A call whose arguments do not fit the signature raises
``TypeError`` at once even when cancelled (``ARITY_KEY``), as any
``async def`` does.

``test_every_public_method_has_cases`` walks the public surface with
``inspect``: a new method without cases fails it. For speed, the cases of
each test function run in one trio_uring run per data path (``_both``),
each on fresh fixtures; the lowlevel cases also assert that an argument
error submitted no SQE.
"""

from __future__ import annotations

import array
import contextlib
import contextvars
import inspect
import io
import os
import pathlib
import re
import select
import socket
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import trio

import trio_uring
import trio_uring.socket as usocket
from trio_uring import lowlevel
from trio_uring._files.binary import AsyncBinaryFile
from trio_uring._files.text import AsyncTextFile

from .lowlevel_helpers import manager

CONTENT = b"hello\nworld\n"
DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "conformance.md"

# -- argument values --------------------------------------------------------------


@dataclass(frozen=True)
class Fresh:
    """A value made anew for each side (a buffer one side may fill or release)."""

    label: str
    make: Callable[[], Any]

    def __repr__(self) -> str:
        return self.label


@dataclass(frozen=True)
class Res:
    """A fixture resource of the side's own environment (an fd, a path, an address)."""

    name: str

    def __repr__(self) -> str:
        return f"<{self.name}>"


class Index:
    """Not an int, but has ``__index__`` (the stdlib takes it where it takes an int)."""

    def __index__(self) -> int:
        return 2

    def __repr__(self) -> str:
        return "Index(2)"


def _released() -> memoryview:
    view = memoryview(bytearray(8))
    view.release()
    return view


BUF = Fresh("bytearray(4)", lambda: bytearray(4))
BIG_BUF = Fresh("bytearray(64)", lambda: bytearray(64))
RELEASED = Fresh("released", _released)
CAST_I = Fresh("cast_i", lambda: memoryview(bytearray(8)).cast("i"))
NONCONTIG = Fresh("noncontig", lambda: memoryview(bytearray(16))[::2])
READONLY_VIEW = Fresh("readonly_view", lambda: memoryview(b"abcd"))
INTS = Fresh("array_i", lambda: array.array("i", [0, 0]))

HUGE = 2**63
HUGER = 2**64
SIZES: list[Any] = [3, 0, -1, -2, None, 1.5, True, HUGE, HUGER, -(2**63) - 1, "3", Index()]
OFFSETS: list[Any] = [0, 4, -1, -5, None, 1.5, True, HUGE, HUGER, "0"]
WHENCES: list[Any] = [0, 1, 2, 3, 5, -1, 1.5, None, "0", HUGE]
TARGETS: list[Any] = [
    BUF,
    BIG_BUF,
    b"abcd",
    READONLY_VIEW,
    RELEASED,
    CAST_I,
    NONCONTIG,
    INTS,
    "str",
    5,
    None,
]
SOURCES: list[Any] = [
    b"xy",
    bytearray(b"xy"),
    memoryview(b"xy"),
    b"",
    RELEASED,
    CAST_I,
    NONCONTIG,
    INTS,
    "str",
    5,
    None,
    1.5,
]
FLAGS: list[Any] = [0, 1.5, None, "0", HUGE]


def vary(*slots: tuple[Any, list[Any]]) -> list[tuple[Any, ...]]:
    """Argument tuples: one per alternative of each slot, the other slots at their first value."""
    base = tuple(valid for valid, _ in slots)
    out = [base]
    for i, (valid, alternatives) in enumerate(slots):
        for alt in alternatives:
            args = (*base[:i], alt, *base[i + 1 :])
            if alt is not valid and args not in out:
                out.append(args)
    return out


# -- the table ----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    surface: str
    method: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    fixture: str = ""  # which resource the call is on (a path's target, a socket's kind)

    @property
    def id(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs]
        where = f"@{self.fixture}" if self.fixture else ""
        return f"{self.surface}.{self.method}({', '.join(parts)}){where}"


def _calls(
    surface: str, method: str, arglists: list[tuple[Any, ...]], fixture: str = ""
) -> list[Case]:
    return [Case(surface, method, args, fixture=fixture) for args in arglists]


def _one(values: list[Any]) -> list[tuple[Any, ...]]:
    return [(v,) for v in values]


def _file_cases(surface: str) -> list[Case]:
    text = surface == "text"
    out: list[Case] = []
    if text:
        data: list[Any] = ["xy", "", b"xy", bytearray(b"x"), None, 5]
        out += _calls(surface, "read", _one(SIZES))
        out += _calls(surface, "readline", _one(SIZES))
        out += _calls(surface, "readlines", _one(SIZES))
        out += _calls(surface, "write", _one(data))
        out += _calls(surface, "writelines", _one([["a", "b"], ["a", b"b"], "ab", None, 5]))
        out += _calls(surface, "seek", vary((0, OFFSETS), (0, WHENCES)))
        out += _calls(surface, "seek", [(1, 1), (1, 2), (0, 1), (0, 2)])
    else:
        out += _calls(surface, "read", _one(SIZES))
        out += _calls(surface, "read1", _one(SIZES))
        out += _calls(surface, "peek", _one(SIZES))
        out += _calls(surface, "readall", [()])
        out += _calls(surface, "readinto", _one(TARGETS))
        out += _calls(surface, "readline", _one(SIZES))
        out += _calls(surface, "readlines", _one(SIZES))
        out += _calls(surface, "write", _one(SOURCES))
        out += _calls(
            surface,
            "writelines",
            _one([[b"a", b"b"], [b"a", "s"], [b"a", RELEASED], b"ab", None, 5]),
        )
        out += _calls(surface, "seek", vary((0, OFFSETS), (0, WHENCES)))
        out += _calls(surface, "pread", vary((3, SIZES), (0, OFFSETS)))
        out += _calls(surface, "preadinto", vary((BUF, TARGETS), (0, OFFSETS)))
        out += _calls(surface, "pwrite", vary((b"xy", SOURCES), (0, OFFSETS)))
    out += _calls(surface, "truncate", _one([None, 3, 0, -1, 1.5, True, "3", HUGE, Index()]))
    for name in (
        "tell",
        "flush",
        "fileno",
        "readable",
        "writable",
        "seekable",
        "isatty",
        "fsync",
        "fdatasync",
        "aclose",
    ):
        out.append(Case(surface, name))
    out += _calls(surface, "tell", [(1,)])  # an argument too many
    # On a closed file, and writing to a read-only one.
    w: Any = "x" if text else b"x"
    closed = [
        ("read", (3,)),
        ("write", (w,)),
        ("seek", (0,)),
        ("tell", ()),
        ("flush", ()),
        ("truncate", ()),
        ("readline", ()),
        ("readlines", ()),
        ("writelines", ([w],)),
        ("fileno", ()),
        ("readable", ()),
        ("seekable", ()),
        ("isatty", ()),
        ("fsync", ()),
    ]
    if not text:
        closed += [
            ("read1", (3,)),
            ("peek", (1,)),
            ("readinto", (BUF,)),
            ("pread", (3, 0)),
            ("pwrite", (w, 0)),
            ("preadinto", (BUF, 0)),
            ("readall", ()),
        ]
    out += [Case(surface, name, args, fixture="closed") for name, args in closed]
    readonly = [("write", (w,)), ("truncate", (0,)), ("writelines", ([w],)), ("flush", ())]
    if not text:
        readonly += [("pwrite", (w, 0))]
    out += [Case(surface, name, args, fixture="ro") for name, args in readonly]
    return out


def _open_cases() -> list[Case]:
    f = Res("fpath")
    return _calls(
        "open_file",
        "open_file",
        [
            (f, "rb"),
            (f, "rw"),
            (f, ""),
            (f, 5),
            (f, None),
            (f, "rb", 1.5),
            (f, "rb", None),
            (f, "r", 0),
            (f, "rb", -5),
            (f, "r", -1, 5),
            (f, "r", -1, "nonexistent"),
            (f, "r", -1, None, 5),
            (f, "r", -1, None, None, "x"),
            (f, "r", -1, None, None, 5),
            (None, "rb"),
            (1.5, "rb"),
            (-1, "rb"),
            (HUGE, "rb"),
            (b"a\0b", "rb"),
            ("a\0b", "rb"),
            (Res("missing"), "rb"),
            (Res("dir"), "rb"),
            (Res("file"), "rb", -1, None, None, None, False),
            (f, "rb", -1, None, None, None, True, 5),
        ],
    )


def _path_cases() -> list[Case]:
    s = "path"
    out: list[Case] = []
    for target in ("file", "missing", "dir", "nul"):
        for name in (
            "read_bytes",
            "stat",
            "lstat",
            "exists",
            "is_file",
            "is_dir",
            "rmdir",
            "unlink",
            "touch",
            "mkdir",
        ):
            out.append(Case(s, name, fixture=target))
    out += _calls(s, "unlink", [(True,), (False,), (None,), ("x",)], "missing")
    out += _calls(s, "stat", [(True,)], "file")
    out += [
        Case(s, "stat", kwargs=(("follow_symlinks", v),), fixture="file") for v in (False, None)
    ]
    out += _calls(
        s,
        "open",
        [
            ("rb",),
            ("r",),
            ("rw",),
            ("",),
            (5,),
            (None,),
            ("rb", 1.5),
            ("r", 0),
            ("r", -1, 5),
            ("r", -1, "nonexistent"),
            ("rb", -1, "utf-8"),
            ("r", -1, None, 5),
            ("r", -1, None, None, "x"),
        ],
        "file",
    )
    out += _calls(s, "read_text", [(), ("utf-8",), (5,), ("nonexistent",), (None, 5)], "file")
    out += _calls(s, "write_bytes", _one(SOURCES), "file")
    out += _calls(
        s,
        "write_text",
        [
            ("t",),
            (b"b",),
            (None,),
            (5,),
            ("t", 5),
            ("t", None, 5),
            ("t", None, None, "x"),
            ("t", None, None, 5),
        ],
        "file",
    )
    out += _calls(s, "read_text", [()], "missing")
    out += _calls(s, "write_bytes", [(b"x",)], "dir")
    for name in ("rename", "replace"):
        out += _calls(
            s,
            name,
            _one([Res("new"), Res("dir"), Res("file2"), None, 5, 1.5, Res("missing/sub"), "a\0b"]),
            "file",
        )
        out += _calls(s, name, [(Res("new"),)], "missing")
    out += _calls(
        s,
        "mkdir",
        [
            (0o700,),
            (1.5,),
            ("x",),
            (None,),
            (-1,),
            (2**40,),
            (HUGE,),
            (0o777, True),
            (0o777, False, True),
        ],
        "missing/sub",
    )
    out += _calls(s, "mkdir", [(0o777, False, True), (0o777, True, True)], "dir")
    out += _calls(
        s,
        "touch",
        [(0o600,), (1.5,), ("x",), (None,), (-1,), (2**40,), (0o666, False), (0o666, None)],
        "missing",
    )
    out += _calls(s, "touch", [(0o666, False), (1.5,)], "file")
    return out


ADDRS: list[Any] = [
    Res("peer"),
    ("127.0.0.1", 70000),
    ("127.0.0.1", -1),
    ("127.0.0.1",),
    "127.0.0.1",
    ("127.0.0.1", "x"),
    ("127.0.0.1", 1.5),
    None,
    5,
    (1.5, 80),
    ("127.0.0.1", HUGE),
]


def _socket_cases() -> list[Case]:
    s = "socket"
    out: list[Case] = []
    out += _calls(s, "recv", vary((3, SIZES), (0, FLAGS)), "stream")
    out += _calls(s, "recv", [(3, socket.MSG_PEEK)], "stream")
    out += _calls(
        s, "recv_into", vary((BUF, TARGETS), (0, [2, 5, -1, 1.5, None, HUGE]), (0, FLAGS)), "stream"
    )
    out += _calls(s, "recvfrom", vary((3, SIZES), (0, FLAGS)), "stream")
    out += _calls(
        s, "recvfrom_into", vary((BUF, TARGETS), (0, [2, 5, -1, 1.5, None]), (0, FLAGS)), "stream"
    )
    out += _calls(
        s, "recvmsg", vary((3, SIZES), (0, [64, -1, 1.5, None, HUGE]), (0, FLAGS)), "stream"
    )
    out += _calls(
        s,
        "recvmsg_into",
        vary(
            (
                [BUF],
                [[BIG_BUF, BUF], [b"abcd"], [RELEASED], [NONCONTIG], [CAST_I], BUF, 5, None, []],
            ),
            (0, [-1, 1.5, None]),
            (0, FLAGS),
        ),
        "stream",
    )
    out += _calls(s, "send", vary((b"xy", SOURCES), (0, FLAGS)), "stream")
    out += _calls(
        s,
        "sendmsg",
        vary(
            ([b"xy"], [[b"x", RELEASED], [NONCONTIG], [b"x", "s"], b"xy", 5, None, []]),
            ((), [[(1, 2)], [1], 5, [(socket.SOL_SOCKET, "x", b"")]]),
            (0, FLAGS),
        ),
        "stream",
    )
    out += _calls(
        s,
        "sendto",
        [(b"x", a) for a in ADDRS]
        + [
            (b"x", 0, Res("peer")),
            (b"x", 1.5, Res("peer")),
            ("x", Res("peer")),
            (RELEASED, Res("peer")),
            (b"x",),
        ],
        "udp",
    )
    out += _calls(s, "sendmsg", [([b"x"], (), 0, a) for a in ADDRS], "udp")
    out += _calls(s, "recvfrom", [(3,), (1.5,), (-1,)], "udp")
    out += _calls(s, "recvmsg", [(3,), (3, 1.5)], "udp")
    out += _calls(s, "connect", _one([Res("peer"), *ADDRS[1:]]), "tcp")
    out += _calls(s, "accept", [(), (1,)], "listener")
    out += _calls(s, "accept", [()], "stream")
    for name in ("close", "detach", "dup", "is_readable"):
        out += _calls(s, name, [(), (1,)], "stream")
    return out


def _stream_cases() -> list[Case]:
    out: list[Case] = []
    out += _calls("stream", "receive_some", _one(SIZES))
    out += _calls("stream", "send_all", _one(SOURCES))
    out += _calls("stream", "send_eof", [(), (1,)])
    out += _calls("stream", "wait_send_all_might_not_block", [()])
    out += _calls("stream", "aclose", [()])
    opt = (socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    out += _calls("stream", "setsockopt", [(*opt, 1), (*opt, 1.5), (*opt, None), ("x", opt[1], 1)])
    out += _calls("stream", "getsockopt", [opt, (opt[0], 1.5), (*opt, 4), (*opt, -1)])
    out += _calls("listener", "accept", [(), (1,)])
    out += _calls("listener", "aclose", [()])
    return out


def _lowlevel_cases() -> list[Case]:
    s = "lowlevel"
    fds: list[Any] = [-1, Res("closed"), 2**40, 1.5, "3", None]
    out: list[Case] = []
    out += _calls(s, "read", vary((Res("file"), fds), (3, SIZES), (-1, OFFSETS)))
    out += _calls(s, "read", [(Res("rfd"), 3), (Res("rfd"), 3, 0)])
    out += _calls(s, "readinto", vary((Res("file"), fds), (BUF, TARGETS), (-1, OFFSETS)))
    out += _calls(s, "write", vary((Res("file"), fds), (b"xy", SOURCES), (-1, OFFSETS)))
    out += _calls(
        s,
        "readv",
        vary(
            (Res("file"), fds),
            ([BUF], [[BUF, BIG_BUF], [b"ab"], [RELEASED], [NONCONTIG], BUF, 5, None, []]),
            (-1, OFFSETS),
        ),
    )
    out += _calls(
        s,
        "writev",
        vary(
            (Res("file"), fds),
            ([b"xy"], [[b"x", RELEASED], [NONCONTIG], [b"x", "s"], b"xy", 5, None, []]),
            (-1, OFFSETS),
        ),
    )
    out += _calls(s, "close", _one([Res("file"), *fds]))
    out += _calls(s, "fsync", _one([Res("file"), *fds]))
    out += _calls(s, "fdatasync", _one([Res("file"), *fds]))
    out += _calls(
        s, "fallocate", vary((Res("file"), fds), (0, [1.5, None]), (0, OFFSETS), (10, SIZES))
    )
    path_args: list[Any] = [Res("missing"), Res("dir"), "a\0b", b"a\0b", Res("fpath_ba"), 1.5, None]
    out += _calls(
        s,
        "openat",
        vary(
            (Res("fpath"), path_args),
            (os.O_RDONLY, [1.5, None, HUGE, "0"]),
            (0o777, [1.5, None, -1, HUGE]),
        ),
    )
    out += [Case(s, "openat", (Res("fpath"), os.O_RDONLY), (("dir_fd", v),)) for v in (-1, 1.5)]
    out += _calls(s, "statx", _one([Res("fpath"), Res("file"), Res("closed"), -1, *path_args]))
    out += [Case(s, "statx", (Res("fpath"),), (("dir_fd", v),)) for v in (-1, 1.5, Res("closed"))]
    out += _calls(s, "unlinkat", _one([Res("fpath"), *path_args]))
    out += [Case(s, "unlinkat", (Res("dir"),), (("rmdir", True),))]
    out += _calls(
        s,
        "renameat",
        vary((Res("fpath"), path_args), (Res("new"), [Res("dir"), b"a\0", 1.5, None])),
    )
    out += [
        Case(s, "renameat", (Res("fpath"), Res("new")), (("src_dir_fd", v),)) for v in (-1, 1.5)
    ]
    out += _calls(
        s,
        "mkdirat",
        vary(
            (Res("missing"), [*path_args[1:4], Res("missing_ba"), 1.5, None]),
            (0o777, [1.5, None, -1, HUGE]),
        ),
    )
    out += _calls(
        s,
        "splice",
        vary(
            (Res("file"), fds),
            (0, [None, -1, -5, 1.5, HUGE]),
            (Res("wfd"), fds),
            (None, [0, 1.5]),
            (3, SIZES[2:]),
            (0, [1.5, None, -1]),
        ),
    )
    out += _calls(s, "recv", vary((Res("sock"), [*fds, Res("rfd")]), (3, SIZES), (0, FLAGS)))
    out += _calls(
        s,
        "recv_into",
        vary((Res("sock"), fds), (BUF, TARGETS), (0, [2, 5, -1, 1.5, HUGE]), (0, FLAGS)),
    )
    out += _calls(
        s, "recvmsg", vary((Res("sock"), fds), (3, SIZES), (0, [64, -1, 1.5, None]), (0, FLAGS))
    )
    out += _calls(s, "send", vary((Res("sock"), [*fds, Res("wfd")]), (b"xy", SOURCES), (0, FLAGS)))
    out += _calls(
        s,
        "sendmsg",
        vary(
            (Res("sock"), fds),
            ([b"xy"], [[b"x", RELEASED], [NONCONTIG], b"xy", 5, None]),
            ((), [[(1, 2)], [1], 5]),
            (0, FLAGS),
        ),
    )
    out += _calls(s, "sendmsg", [(Res("udp"), [b"x"], (), 0, a) for a in ADDRS])
    out += _calls(s, "accept", _one([Res("listener"), Res("sock"), Res("rfd"), *fds]))
    out += _calls(s, "connect", [(Res("tcp"), a) for a in ADDRS] + [(f, Res("peer")) for f in fds])
    out += _calls(
        s,
        "shutdown",
        vary((Res("sock"), [*fds, Res("rfd")]), (socket.SHUT_WR, [5, 1.5, None, HUGE, -1])),
    )
    out += _calls(s, "poll", vary((Res("sock"), [*fds]), (select.POLLIN, [1.5, None, -1, HUGE])))
    out += _calls(s, "cancel_fd", _one([Res("sock"), *fds]))
    out += _calls(s, "nop", [(), (1,)])
    out += _calls(s, "statistics", [(), (1,)])
    return out


CASES: list[Case] = [
    *_file_cases("buffered"),
    *_file_cases("unbuffered"),
    *_file_cases("text"),
    *_open_cases(),
    *_path_cases(),
    *_socket_cases(),
    *_stream_cases(),
    *_lowlevel_cases(),
]

SOCKET_SURFACES = ("socket", "stream", "listener")
DATA_PATHS = ("direct", "batched")


@dataclass(frozen=True)
class Kept:
    """A difference kept on purpose: a row of docs/conformance.md's "Argument parity" table.

    ``oracle`` is what the oracle does (an exception class name, or "ok");
    ours either matches the oracle of the ``reference`` surface instead, or
    raises ``ours``. The test asserts both halves.
    """

    key: str
    surfaces: tuple[str, ...]
    methods: tuple[str, ...]
    oracle: str
    ours: str = ""
    reference: str = ""
    applies: Callable[[Case], bool] = lambda case: True

    def matches(self, case: Case) -> bool:
        return case.surface in self.surfaces and case.method in self.methods and self.applies(case)


def _arg(case: Case, n: int) -> Any:
    return case.args[n] if len(case.args) > n else None


def _readonly_target(value: Any) -> bool:
    if isinstance(value, list):
        return any(_readonly_target(v) for v in value)
    return isinstance(value, bytes) or value in (READONLY_VIEW, NONCONTIG)


def _negative(value: Any) -> bool:
    return type(value) is int and -(2**63) <= value < 0


FILES = ("buffered", "unbuffered")
KEPT: list[Kept] = [
    Kept(
        "unbuffered read1/peek",
        ("unbuffered",),
        ("read1", "peek"),
        "AttributeError",
        reference="buffered",
    ),
    Kept("buffered readall", ("buffered",), ("readall",), "AttributeError", reference="unbuffered"),
    Kept(
        "read-only target",
        FILES,
        ("preadinto",),
        "BufferError",
        ours="TypeError",
        applies=lambda c: _readonly_target(c.args[0]),
    ),
    Kept(
        "read-only target",
        ("lowlevel",),
        ("readinto", "readv"),
        "BufferError",
        ours="TypeError",
        applies=lambda c: _readonly_target(c.args[1]),
    ),
    Kept(
        "preadinto offset -1",
        FILES,
        ("preadinto",),
        "ok",
        ours="OSError",
        applies=lambda c: _arg(c, 1) == -1 and type(_arg(c, 1)) is int,
    ),
    Kept(
        "negative size",
        FILES,
        ("pread",),
        "OSError",
        ours="ValueError",
        applies=lambda c: _negative(c.args[0]),
    ),
    Kept(
        "negative size",
        ("lowlevel",),
        ("read", "fallocate"),
        "OSError",
        ours="ValueError",
        applies=lambda c: _negative(_arg(c, 3 if c.method == "fallocate" else 1)),
    ),
    Kept(
        "offset on a pipe",
        ("lowlevel",),
        ("read",),
        "OSError",
        ours="ok",
        applies=lambda c: c.args[0] == Res("rfd") and _arg(c, 2) not in (None, -1),
    ),
    Kept(
        "statx of fd -1",
        ("lowlevel",),
        ("statx",),
        "OSError",
        ours="ValueError",
        applies=lambda c: c.args == (-1,),
    ),
    Kept(
        "bytearray path",
        ("lowlevel",),
        ("openat", "statx", "unlinkat", "renameat", "mkdirat"),
        "ok",
        ours="TypeError",
        applies=lambda c: any(isinstance(a, Res) and a.name.endswith("_ba") for a in c.args),
    ),
]
# In test_cancelled_first: a call with the wrong arguments for the signature
# raises TypeError when it is made (any async def does, Trio's socket
# methods too), where trio.open_file's and trio.Path's wrappers, which take
# *args, are cancelled first.
ARITY_KEY = "wrong number of arguments"


def kept_for(case: Case) -> Kept | None:
    found = [k for k in KEPT if k.matches(case)]
    assert len(found) <= 1, found
    return found[0] if found else None


# Public methods with no case, and why.
NOT_COVERED: dict[tuple[str, str], str] = {
    ("buffered", "detach_raw"): "internal hand-over to the text layer; no argument, no stdlib peer",
    (
        "unbuffered",
        "detach_raw",
    ): "internal hand-over to the text layer; no argument, no stdlib peer",
    (
        "text",
        "start_writing_at",
    ): "called by open_file only (the encoder's BOM state); no stdlib peer",
}

# -- outcomes -------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str  # "ok", "err" or "cancelled"
    value: Any = None
    exc: BaseException | None = None
    after: Any = None  # the fixture's state afterwards (file bytes, tree, buffers)
    roots: tuple[str, ...] = ()

    def __repr__(self) -> str:
        after = ""
        if self.kind == "err":
            return f"err {type(self.exc).__name__}: {_message(self)}{after}"
        return f"{self.kind} {self.value!r}{after}"


_STOP = frozenset(
    [
        "the",
        "not",
        "and",
        "for",
        "are",
        "was",
        "has",
        "with",
        "must",
        "should",
        "cannot",
        "can't",
        "object",
        "argument",
        "arguments",
        "value",
        "values",
        "got",
        "given",
        "expected",
        "one",
        "only",
        "than",
        "this",
        "that",
        "from",
    ]
)
_SYNONYMS = {"integer": "int", "integers": "int", "bytes-like": "buffer"}


def _words(message: str) -> set[str]:
    found = re.findall(r"[a-z_][a-z0-9_'-]*", message.lower())
    return {
        _SYNONYMS.get(w.strip("'"), w.strip("'")) for w in found if len(w.strip("'")) > 2
    } - _STOP


def _message(out: Outcome) -> str:
    text = str(out.exc)
    for root in out.roots:
        text = text.replace(root, "<root>")
    return text


def same_kind(a: Outcome, b: Outcome) -> bool:
    """The messages of two errors are of the same kind (see the module docstring)."""
    ma, mb = _message(a), _message(b)
    if ma == mb:
        return True
    return bool(_words(ma) & _words(mb))


def _diff(what: str, expected: Outcome, got: Outcome) -> str:
    text = f"{what} differs: oracle {expected!r} | ours {got!r}"
    if what == "state after":
        text += f" | oracle after {expected.after!r} | ours after {got.after!r}"
    return text.replace("\n", "\\n")


def assert_same(expected: Outcome, got: Outcome, *, compare_after: bool = True) -> None:
    """The two outcomes agree (see the module docstring for what that means)."""
    assert got.kind == expected.kind, _diff("outcome", expected, got)
    if got.kind == "ok":
        assert got.value == expected.value, _diff("value", expected, got)
    elif got.kind == "err":
        assert type(got.exc) is type(expected.exc), _diff("exception class", expected, got)
        if isinstance(expected.exc, OSError):
            assert isinstance(got.exc, OSError)
            assert got.exc.errno == expected.exc.errno, _diff("errno", expected, got)
        assert same_kind(expected, got), _diff("message kind", expected, got)
    if compare_after:
        assert got.after == expected.after, _diff("state after", expected, got)


def _normalize(value: Any) -> Any:
    if isinstance(value, Index):
        return value.__index__()  # FileIO.truncate returns its argument as given
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, os.PathLike):
        return ("path", os.fspath(value))
    if isinstance(value, os.stat_result):
        return ("stat", value.st_mode, value.st_size)
    if isinstance(value, (socket.socket, trio.socket.SocketType)):
        kind = ("socket", value.family, value.type)
        value.close()
        return kind
    if (
        isinstance(value, (io.IOBase, trio_uring.AsyncFile))
        or type(value).__name__ == "AsyncIOWrapper"
    ):
        return ("file", getattr(value, "mode", None))
    if isinstance(value, trio_uring.UringStatistics) or type(value).__name__ == "UringStatistics":
        return "statistics"
    if isinstance(value, tuple):
        return tuple(_normalize(v) for v in value)
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value


async def outcome_of(call: Callable[[], Any]) -> Outcome:
    """Call (and await, if it gives an awaitable): what came of it."""
    try:
        value = call()
        if inspect.isawaitable(value):
            value = await value
    except trio.Cancelled:
        return Outcome("cancelled")
    except Exception as exc:
        return Outcome("err", exc=exc)
    return Outcome("ok", _normalize(value))


# -- environments: each side's own fixture ----------------------------------------------


class Env:
    """One side's fresh fixture: files and a tree under ``root``, fds, sockets."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.exits = contextlib.ExitStack()
        self.made: dict[str, Any] = {}
        self.buffers: list[Any] = []
        self.addresses: list[Any] = []
        os.makedirs(os.path.join(root, "dir"))
        for name in ("file", "file2"):
            with open(os.path.join(root, name), "wb") as f:
                f.write(CONTENT)

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def fd(self, fd: int) -> int:
        self.exits.callback(_close_quietly, fd)
        return fd

    def sock(self, sock: socket.socket) -> socket.socket:
        self.exits.callback(sock.close)
        return sock

    def get(self, name: str) -> Any:
        if name not in self.made:
            self.made[name] = self._make(name)
        return self.made[name]

    def _make(self, name: str) -> Any:
        if name in ("fpath", "missing", "new", "dir", "file2", "missing/sub"):
            return self.path({"fpath": "file"}.get(name, name))
        if name.endswith("_ba"):  # the same path as a bytearray (which os still takes)
            return bytearray(os.fsencode(self.get(name[:-3])))
        if name == "file":
            return self.fd(os.open(self.path("file"), os.O_RDWR))
        if name == "closed":
            fd = os.open(self.path("file"), os.O_RDONLY)
            os.close(fd)
            return fd
        if name in ("rfd", "wfd"):
            r, w = os.pipe()
            self.fd(r)
            self.fd(w)
            os.write(w, CONTENT)
            self.made["rfd"], self.made["wfd"] = r, w
            return self.made[name]
        if name in ("sock", "peer_sock"):
            a, b = socket.socketpair()
            self.sock(a)
            self.sock(b)
            b.sendall(CONTENT)
            self.made["sock"], self.made["peer_sock"] = a.fileno(), b
            return self.made[name]
        if name in ("listener", "peer"):
            lst = self.sock(socket.socket())
            lst.bind(("127.0.0.1", 0))
            lst.listen(5)
            client = self.sock(socket.create_connection(lst.getsockname()))
            self.addresses.append(client.getsockname())
            self.made["listener"], self.made["peer"] = lst.fileno(), lst.getsockname()
            self.made["listener_sock"] = lst
            return self.made[name]
        if name == "tcp":
            self.get("peer")
            return self.sock(socket.socket()).fileno()
        if name == "udp":
            self.get("peer")
            receiver = self.sock(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            receiver.bind(("127.0.0.1", 0))
            sender = self.sock(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            sender.bind(("127.0.0.1", 0))
            self.addresses.append(sender.getsockname())
            for _ in range(3):
                sender.sendto(CONTENT, receiver.getsockname())
            return receiver.fileno()
        raise KeyError(name)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Fresh):
            made = value.make()
            self.buffers.append(made)
            return made
        if isinstance(value, Res):
            return self.get(value.name)
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.resolve(v) for v in value)
        return value

    def scrub(self, value: Any) -> Any:
        """``value`` with this side's own addresses (an ephemeral port) as ``"<addr>"``."""
        if isinstance(value, tuple):
            if value in self.addresses:
                return "<addr>"
            return tuple(self.scrub(v) for v in value)
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        return value

    def buffer_state(self) -> list[Any]:
        state: list[Any] = []
        for buf in self.buffers:
            try:
                state.append(bytes(buf))
            except (ValueError, TypeError):
                state.append("released")
        return state

    def tree(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root)
            out.append((rel, "dir"))
            for name in filenames:
                with open(os.path.join(dirpath, name), "rb") as f:
                    out.append((os.path.join(rel, name), f.read()))
            dirnames.sort()
        return sorted(out, key=lambda item: item[0])

    def close(self) -> None:
        self.exits.close()


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


# -- running one side of a case ---------------------------------------------------------

FILE_OPEN: dict[str, dict[str, Any]] = {
    "buffered": {"mode": "r+b"},
    "unbuffered": {"mode": "r+b", "buffering": 0},
    "text": {"mode": "r+", "encoding": "utf-8"},
}


def _os_extra(method: str) -> Callable[..., Any] | None:
    """The ``os`` call a file method with no ``io`` counterpart is measured against."""

    def flushed(f: Any) -> int:
        f.flush()
        return int(f.fileno())

    extras: dict[str, Callable[..., Any]] = {
        "pread": lambda f, *a: os.pread(flushed(f), *a),
        "preadinto": lambda f, buf, off: os.preadv(flushed(f), [buf], off),
        "pwrite": lambda f, *a: os.pwrite(flushed(f), *a),
        "fsync": lambda f, *a: os.fsync(flushed(f), *a),
        "fdatasync": lambda f, *a: os.fdatasync(flushed(f), *a),
    }
    return extras.get(method)


async def _file_side(case: Case, env: Env, who: str, surface: str) -> Outcome:
    """``who``: "native", "stdlib" (the argument oracle) or "trio" (the cancellation oracle)."""
    path = env.path("file")
    kw = dict(FILE_OPEN[surface])
    if case.fixture == "ro":
        kw["mode"] = kw["mode"].replace("+", "")
    args = env.resolve(case.args)
    f: Any
    if who == "native":
        f = await trio_uring.open_file(path, **kw)
    elif who == "trio":
        f = await trio.open_file(path, **kw)
    else:
        f = open(path, **kw)  # noqa: SIM115 - closed below
    if case.fixture == "closed":
        await _close(f)
    try:
        extra = _os_extra(case.method)
        if who == "native":
            call = lambda: getattr(f, case.method)(*args)  # noqa: E731
        elif extra is not None:
            raw = f.wrapped if who == "trio" else f
            if who == "trio":
                call = lambda: trio.to_thread.run_sync(lambda: extra(raw, *args))  # noqa: E731
            else:
                call = lambda: extra(raw, *args)  # noqa: E731
        elif case.method == "aclose" and who == "stdlib":
            call = lambda: f.close(*args)  # noqa: E731
        else:
            call = lambda: getattr(f, case.method)(*args)  # noqa: E731
        out = await _guarded(call, env)
    finally:
        with trio.CancelScope(shield=True), contextlib.suppress(Exception):
            await _close(f)
    if case.method == "fileno" and out.kind == "ok":
        out.value = type(out.value).__name__
    if case.method == "peek" and out.kind == "ok":
        # How much peek returns is the buffer's business: what it starts with is not.
        out.value = out.value[:1]
    out.after = (env.tree(), env.buffer_state())
    return out


CANCELLED = contextvars.ContextVar("CANCELLED", default=False)


async def _close(f: Any) -> None:
    if hasattr(f, "aclose"):
        await f.aclose()
    else:
        f.close()


async def _guarded(call: Callable[[], Any], env: Env) -> Outcome:
    """The call's outcome; inside an already cancelled scope in ``test_cancelled_first``."""
    if CANCELLED.get():
        with trio.CancelScope() as scope:
            scope.cancel()
            out = await outcome_of(call)
    else:
        out = await outcome_of(call)
    out.roots = (env.root,)
    out.value = env.scrub(out.value)
    return out


async def _open_side(case: Case, env: Env, who: str) -> Outcome:
    args = env.resolve(case.args)
    if who == "native":
        fn: Callable[..., Any] = trio_uring.open_file
    elif who == "trio":
        fn = trio.open_file
    else:
        fn = open
    out = await _guarded(lambda: _open_and_close(fn, args), env)
    out.after = env.tree()
    return out


async def _open_and_close(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    value = fn(*args)
    if inspect.isawaitable(value):
        value = await value
    result = _normalize(value)
    if hasattr(value, "aclose"):
        await value.aclose()
    else:
        value.close()
    return result


async def _path_side(case: Case, env: Env, who: str) -> Outcome:
    target = "a\0b" if case.fixture == "nul" else env.path(case.fixture)
    cls: Any = {"native": trio_uring.Path, "trio": trio.Path, "stdlib": pathlib.Path}[who]
    p = cls(target)
    args = env.resolve(case.args)
    kwargs = dict(case.kwargs)
    if case.method == "open":
        out = await _guarded(lambda: _open_and_close(p.open, args), env)
    else:
        out = await _guarded(lambda: getattr(p, case.method)(*args, **kwargs), env)
    if out.kind == "ok" and case.method in ("rename", "replace") and isinstance(out.value, tuple):
        out.value = ("path", os.path.relpath(out.value[1], env.root))
    out.after = (env.tree(), env.buffer_state())
    return out


def _socket_for(env: Env, kind: str, who: str) -> Any:
    fd = env.get({"stream": "sock", "udp": "udp", "tcp": "tcp", "listener": "listener"}[kind])
    std = socket.socket(fileno=os.dup(fd))
    env.sock(std)
    if who == "native":
        return usocket.from_stdlib_socket(std)
    return trio.socket.from_stdlib_socket(std)


async def _socket_side(case: Case, env: Env, who: str) -> Outcome:
    sock = _socket_for(env, case.fixture, who)
    args = env.resolve(case.args)
    with trio.fail_after(2):
        out = await _guarded(lambda: getattr(sock, case.method)(*args), env)
    if case.method == "detach" and out.kind == "ok":
        _close_quietly(out.value)
        out.value = "fd"
    sock.close()
    out.after = env.buffer_state()
    return out


async def _stream_side(case: Case, env: Env, who: str) -> Outcome:
    if case.surface == "listener":
        listener = trio.SocketListener(_socket_for(env, "listener", who))
        with trio.fail_after(2):
            out = await _guarded(
                lambda: getattr(listener, case.method)(*env.resolve(case.args)), env
            )
        if out.kind == "ok" and isinstance(out.value, trio.SocketStream):
            await out.value.aclose()
            out.value = "SocketStream"
        await listener.aclose()
        return out
    stream = trio.SocketStream(_socket_for(env, "stream", who))
    args = env.resolve(case.args)
    with trio.fail_after(2):
        out = await _guarded(lambda: getattr(stream, case.method)(*args), env)
    await stream.aclose()
    out.after = env.buffer_state()
    return out


# lowlevel: the os/socket/select call each function mirrors.


def _on_socket(fd: Any, use: Callable[[socket.socket], Any]) -> Any:
    """``use`` on a socket object over ``fd``, after what ``os`` says of the fd itself.

    (``socket.socket(fileno=)`` is no judge of the fd: None makes a new
    socket, 2**40 is truncated to fd 0.)
    """
    _fd_check(fd)
    sock = socket.socket(fileno=fd)
    try:
        return use(sock)
    finally:
        sock.detach()


def _positional(offset: Any) -> bool:
    return not (type(offset) is int and offset == -1)


def _accept(fd: Any) -> Any:
    conn, address = _on_socket(fd, lambda s: s.accept())
    return (_closed_fd(conn.detach()), address)


def _closed_fd(fd: int) -> str:
    """An fd a call returned, closed; what is compared is that it was one."""
    os.close(fd)
    return "fd"


def _poll(fd: Any, events: Any) -> int:
    """``select.poll`` of the fd, after what ``os`` says of it (EBADF, where poll says POLLNVAL)."""
    poller = select.poll()
    poller.register(fd, events)
    os.fstat(fd)
    ready = poller.poll(1000)
    return int(ready[0][1]) if ready else 0


def _fd_check(fd: Any) -> int:
    """What ``os``/``select`` say of an fd argument: its type and range, then EBADF."""
    select.poll().register(fd)  # PyObject_AsFileDescriptor, as os.fsync parses it
    os.fstat(fd)
    return 0


LOWLEVEL_ORACLE: dict[str, Callable[..., Any]] = {
    "read": lambda fd, n, off=-1: os.pread(fd, n, off) if _positional(off) else os.read(fd, n),
    "readinto": lambda fd, b, off=-1: (
        os.preadv(fd, [b], off) if _positional(off) else os.readv(fd, [b])
    ),
    "write": lambda fd, d, off=-1: os.pwrite(fd, d, off) if _positional(off) else os.write(fd, d),
    "readv": lambda fd, bs, off=-1: (
        os.preadv(fd, bs, off) if _positional(off) else os.readv(fd, bs)
    ),
    "writev": lambda fd, bs, off=-1: (
        os.pwritev(fd, bs, off) if _positional(off) else os.writev(fd, bs)
    ),
    "close": os.close,
    "fsync": os.fsync,
    "fdatasync": os.fdatasync,
    "fallocate": lambda fd, mode, off, length: (
        os.posix_fallocate(fd, off, length)
        if type(mode) is int and mode == 0
        else os.posix_fallocate(fd, mode, off)
    ),  # a bad mode: what posix_fallocate says of its type
    "openat": lambda path, flags, mode=0o777, dir_fd=None: _closed_fd(
        os.open(path, flags, mode, dir_fd=dir_fd)
    ),
    "statx": lambda path, dir_fd=None: os.stat(path, dir_fd=dir_fd),
    "unlinkat": lambda path, rmdir=False: (os.rmdir if rmdir else os.unlink)(path),
    "renameat": lambda src, dst, src_dir_fd=None: os.rename(src, dst, src_dir_fd=src_dir_fd),
    "mkdirat": lambda path, mode=0o777: os.mkdir(path, mode),
    "splice": lambda fin, oin, fout, oout, n, flags=0: os.splice(fin, fout, n, oin, oout, flags),
    "recv": lambda fd, n, flags=0: _on_socket(fd, lambda s: s.recv(n, flags)),
    "recv_into": lambda fd, b, n=0, flags=0: _on_socket(fd, lambda s: s.recv_into(b, n, flags)),
    "recvmsg": lambda fd, n, anc=0, flags=0: _on_socket(fd, lambda s: s.recvmsg(n, anc, flags)),
    "send": lambda fd, d, flags=0: _on_socket(fd, lambda s: s.send(d, flags)),
    "sendmsg": lambda fd, bs, anc=(), flags=0, addr=None: _on_socket(
        fd,
        lambda s: (
            s.sendmsg(bs, anc, flags, addr) if addr is not None else s.sendmsg(bs, anc, flags)
        ),
    ),
    "accept": _accept,
    "connect": lambda fd, addr: _on_socket(fd, lambda s: s.connect(addr)),
    "shutdown": lambda fd, how: _on_socket(fd, lambda s: s.shutdown(how)),
    "poll": _poll,
    "cancel_fd": _fd_check,
    "nop": trio.lowlevel.checkpoint,
    "statistics": lambda: trio.lowlevel.current_statistics().io_statistics,
}
LOWLEVEL_NORMALIZE: dict[str, Callable[[Any], Any]] = {
    "openat": _closed_fd,
    "accept": lambda r: (_closed_fd(r[0]), r[1]),
}
# What reached the kernel must never be an argument error: these raised
# before any SQE was submitted, on our side.
ARGUMENT_ERRORS = (TypeError, ValueError, OverflowError, BufferError)


async def _lowlevel_side(case: Case, env: Env, who: str) -> Outcome:
    args = env.resolve(case.args)
    kwargs = {k: env.resolve(v) for k, v in dict(case.kwargs).items()}
    if who == "native":
        before = manager().statistics().sqes_submitted
        with trio.fail_after(2):
            out = await _guarded(lambda: getattr(lowlevel, case.method)(*args, **kwargs), env)
        if out.kind == "err" and isinstance(out.exc, ARGUMENT_ERRORS):
            assert manager().statistics().sqes_submitted == before, case.id
        if out.kind == "ok" and case.method in LOWLEVEL_NORMALIZE:
            out.value = _normalize(LOWLEVEL_NORMALIZE[case.method](out.value))
    else:
        with warnings.catch_warnings():
            # os still takes a bytearray path, with a DeprecationWarning (KEPT).
            warnings.simplefilter("ignore", DeprecationWarning)
            out = await _guarded(lambda: LOWLEVEL_ORACLE[case.method](*args, **kwargs), env)
    if case.method == "poll" and out.kind == "ok":
        out.value = bool(out.value & select.POLLIN)
    out.value = env.scrub(out.value)
    out.after = (env.tree(), env.buffer_state())
    return out


async def run_side(case: Case, env: Env, who: str, surface: str) -> Outcome:
    if surface in FILE_OPEN:
        return await _file_side(case, env, who, surface)
    if surface == "open_file":
        return await _open_side(case, env, who)
    if surface == "path":
        return await _path_side(case, env, who)
    if surface == "socket":
        return await _socket_side(case, env, who)
    if surface in ("stream", "listener"):
        return await _stream_side(case, env, who)
    return await _lowlevel_side(case, env, who)


# The case by identity (its arguments need not be hashable), then the rest.
Key = tuple[int, tuple[str, str], bool, str, tuple[str, str]]
_CASE_OF: dict[int, Case] = {id(case): case for case in CASES}
_DONE: dict[Key, tuple[Outcome, Outcome] | Exception] = {}


def _both(
    case: Case,
    whos: tuple[str, str],
    cancelled: bool,
    data_path: str = "direct",
    surfaces: tuple[str, str] | None = None,
) -> tuple[Outcome, Outcome]:
    """The two sides of a case, each run in a fresh environment of its own.

    For speed, the first test to ask runs every case its test function will
    ask for (``_planned``) on one trio_uring run, and keeps the outcomes.
    """
    key: Key = (id(case), whos, cancelled, data_path, surfaces or (case.surface, case.surface))
    if key not in _DONE:
        batch = [k for k in _planned(cancelled, data_path) if k not in _DONE]
        _run_batch(batch if key in batch else [*batch, key])
    done = _DONE.pop(key)
    if isinstance(done, Exception):
        raise done
    return done


def _run_batch(keys: list[Key]) -> None:
    async def one(key: Key) -> tuple[Outcome, Outcome]:
        case_id, whos, cancelled, _, surfaces = key
        case = _CASE_OF[case_id]
        results: list[Outcome] = []
        with tempfile.TemporaryDirectory() as tmp:
            for n, (who, surface) in enumerate(zip(whos, surfaces, strict=True)):
                env = Env(os.path.join(tmp, f"side{n}"))
                try:
                    if cancelled:
                        out = await _cancelled(case, env, who, surface)
                    else:
                        out = await run_side(case, env, who, surface)
                finally:
                    env.close()
                out.roots = (env.root,)
                results.append(out)
        return results[0], results[1]

    async def main() -> None:
        for key in keys:
            try:
                _DONE[key] = await one(key)
            except Exception as exc:  # the harness failed: that case's test reports it
                _DONE[key] = exc

    trio_uring.run(main, fallback="raise", data_path=keys[0][3])  # type: ignore[arg-type]


def _planned(cancelled: bool, data_path: str) -> list[Key]:
    """Every key ``test_arguments_as_the_oracle`` (or ``test_cancelled_first``) asks for."""
    keys: list[Key] = []
    for param in _cancel_params() if cancelled else _params():
        case, dp = param.values
        if dp != data_path:
            continue
        kept = kept_for(case)
        if cancelled:
            reference = kept.reference if kept is not None and kept.reference else case.surface
            keys.append((id(case), ("trio", "native"), True, dp, (reference, case.surface)))
            continue
        oracle = _oracle(case.surface)
        keys.append((id(case), (oracle, "native"), False, dp, (case.surface, case.surface)))
        if kept is not None and kept.reference:
            keys.append((id(case), (oracle, "native"), False, dp, (kept.reference, case.surface)))
    return keys


async def _cancelled(case: Case, env: Env, who: str, surface: str) -> Outcome:
    """The call inside an already cancelled scope (its objects are made outside it)."""
    token = CANCELLED.set(True)
    try:
        out = await run_side(case, env, who, surface)
    finally:
        CANCELLED.reset(token)
    out.after = None
    return out


def _params() -> list[Any]:
    params = []
    for case in CASES:
        if case.surface in SOCKET_SURFACES:
            params += [pytest.param(case, dp, id=f"{case.id}[{dp}]") for dp in DATA_PATHS]
        else:
            params.append(pytest.param(case, "direct", id=case.id))
    return params


def _oracle(surface: str) -> str:
    return {"path": "stdlib", "open_file": "stdlib", "lowlevel": "stdlib"}.get(
        surface, "trio" if surface in SOCKET_SURFACES else "stdlib"
    )


@pytest.mark.parametrize(("case", "data_path"), _params())
def test_arguments_as_the_oracle(case: Case, data_path: str) -> None:
    oracle = _oracle(case.surface)
    kept = kept_for(case)
    if kept is None:
        expected, got = _both(case, (oracle, "native"), False, data_path)
        assert_same(expected, got)
        return
    # A documented difference: the oracle does what the docs say it does...
    expected, got = _both(case, (oracle, "native"), False, data_path)
    if kept.oracle == "ok":
        assert expected.kind == "ok", expected
    else:
        assert expected.kind == "err", expected
        assert type(expected.exc).__name__ == kept.oracle, expected
    # ...and ours does what the docs say instead.
    if kept.reference:
        expected, got = _both(
            case, (oracle, "native"), False, data_path, (kept.reference, case.surface)
        )
        assert_same(expected, got)
    elif kept.ours == "ok":
        assert got.kind == "ok", got
    else:
        assert got.kind == "err", got
        assert type(got.exc).__name__ == kept.ours, got


def _owner(case: Case) -> Any:
    return {
        "buffered": AsyncBinaryFile,
        "unbuffered": AsyncBinaryFile,
        "text": AsyncTextFile,
        "path": trio_uring.Path,
        "socket": usocket.NativeSocket,
        "stream": trio.SocketStream,
        "listener": trio.SocketListener,
    }.get(case.surface)


def _is_async(case: Case) -> bool:
    if case.surface == "lowlevel":
        return False  # no Trio oracle; an op refuses its arguments before the kernel sees them
    owner = _owner(case)
    if owner is None:
        return True  # open_file
    return inspect.iscoroutinefunction(getattr(owner, case.method))


def _cancel_params() -> list[Any]:
    return [p for p in _params() if _is_async(p.values[0])]


def _wrong_arity(case: Case) -> bool:
    owner = _owner(case)
    if owner is None:
        return False
    try:
        inspect.signature(getattr(owner, case.method)).bind(None, *case.args, **dict(case.kwargs))
    except TypeError:
        return True
    return False


@pytest.mark.parametrize(("case", "data_path"), _cancel_params())
def test_cancelled_first(case: Case, data_path: str) -> None:
    kept = kept_for(case)
    reference = kept.reference if kept is not None and kept.reference else case.surface
    expected, got = _both(case, ("trio", "native"), True, data_path, (reference, case.surface))
    if _wrong_arity(case) and expected.kind == "cancelled":
        # Documented (ARITY_KEY): the call itself is refused, before any checkpoint.
        assert got.kind == "err", got
        assert isinstance(got.exc, TypeError), got
        assert re.search(r"positional argument|unexpected keyword", str(got.exc)), got
    elif expected.kind == "err" and got.kind == "err":
        assert type(got.exc) is type(expected.exc), _diff("exception class", expected, got)
    else:
        assert got.kind == expected.kind, _diff("outcome", expected, got)


def _public(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))}


def _own(cls: type, stop: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is stop:
            break
        names |= {n for n, v in vars(klass).items() if not n.startswith("_") and callable(v)}
    return names


def public_surface() -> dict[str, set[str]]:
    """Every public method of the native surfaces, walked with inspect."""
    from trio._socket import _SocketType

    return {
        "buffered": _public(AsyncBinaryFile),
        "unbuffered": _public(AsyncBinaryFile),
        "text": _public(AsyncTextFile),
        "open_file": {"open_file"},
        "path": {
            n for n, v in vars(trio_uring.Path).items() if not n.startswith("_") and callable(v)
        },
        # Ours, and connect: Trio's own code, but it takes the addresses.
        "socket": _own(usocket.NativeSocket, _SocketType) | {"connect"},
        "stream": _public(trio.SocketStream),
        "listener": _public(trio.SocketListener),
        "lowlevel": {n for n in lowlevel.__all__ if callable(getattr(lowlevel, n))},
    }


def test_every_public_method_has_cases() -> None:
    covered = {(c.surface, c.method) for c in CASES}
    surface = public_surface()
    for where, names in surface.items():
        for name in sorted(names):
            key = (where, name)
            assert (key in covered) != (key in NOT_COVERED), f"{where}.{name}: no cases"
    for case in CASES:  # and no case names a method that is not there
        assert case.method in surface[case.surface], case.id


def test_documented_differences_are_in_the_docs() -> None:
    doc = DOC.read_text("utf-8")
    for key in [k.key for k in KEPT] + [ARITY_KEY]:
        assert f"| {key} |" in doc, key
    for kept in KEPT:
        assert any(kept.matches(c) for c in CASES), f"{kept.key}: no case checks it"


def test_the_message_rule_tells_kinds_apart() -> None:
    a = Outcome("err", exc=TypeError("'float' object cannot be interpreted as an integer"))
    b = Outcome("err", exc=TypeError("argument should be integer or None, not 'float'"))
    c = Outcome("err", exc=ValueError("embedded null byte"))
    d = Outcome("err", exc=ValueError("negative file descriptor"))
    assert same_kind(a, b)
    assert not same_kind(c, d)
    with pytest.raises(AssertionError):
        assert_same(c, d)
    with pytest.raises(AssertionError):
        assert_same(Outcome("ok", 1), Outcome("ok", 2))
