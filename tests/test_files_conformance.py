"""``trio_uring.open_file`` against the builtin ``open`` as the oracle.

Generated op sequences (Hypothesis) run on both, on io_uring and on stock
Trio (the threaded fallback); every result, exception type and errno, and
the file's final bytes must be equal.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .files_oracle import Op, compare

BACKENDS = pytest.mark.parametrize("backend", ["uring", "stock"])
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sizes = st.one_of(st.integers(-1, 40), st.sampled_from([None, 4095, 4096, 4097, 9000]))
offsets = st.integers(-3, 6000)
whences = st.sampled_from([0, 1, 2])
data = st.binary(max_size=300) | st.sampled_from([b"x", b"\n", b"ab\ncd\n", b"z" * 5000])
contents = (
    st.none()
    | st.binary(max_size=64)
    | st.builds(
        lambda parts: b"".join(parts),
        st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\r\n", b"xyz" * 100]), max_size=60),
    )
)


def binary_ops(unbuffered: bool) -> st.SearchStrategy[list[Op]]:
    op = st.one_of(
        st.tuples(st.just("read"), sizes),
        st.tuples(st.just("readline"), sizes),
        st.tuples(st.just("readinto"), st.integers(0, 5000)),
        st.tuples(st.just("write"), data),
        st.tuples(st.just("seek"), offsets, whences),
        st.tuples(st.just("seek"), st.integers(-50, 0), st.sampled_from([1, 2])),
        st.tuples(st.just("tell")),
        st.tuples(st.just("truncate"), st.none() | st.integers(0, 5000)),
        st.tuples(st.just("flush")),
        st.tuples(st.just("readlines")),
        st.tuples(st.just("readall")),
        *([] if unbuffered else [st.tuples(st.just("read1"), sizes)]),
    )
    return st.lists(op, max_size=25)


BINARY_MODES = ["rb", "r+b", "wb", "w+b", "ab", "a+b", "xb", "x+b"]


@BACKENDS
@pytest.mark.parametrize("mode", BINARY_MODES)
@pytest.mark.parametrize("buffering", [-1, 0, 7, 64])
def test_binary_op_sequences(backend: str, mode: str, buffering: int) -> None:
    @SETTINGS
    @given(content=contents, ops=binary_ops(buffering == 0))
    def check(content: bytes | None, ops: list[Op]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            expected, got = compare(backend, tmp, mode, content, ops, buffering=buffering)
        assert got == expected

    check()


text_contents = st.none() | st.lists(
    st.sampled_from(["a", "b", "\n", "\r", "\r\n", "é", "€", "𝄞", " ", "line\n" * 50]),
    max_size=200,
).map("".join)
text_sizes = st.one_of(st.integers(-1, 30), st.sampled_from([None, 9000]))
text_data = st.text(alphabet=st.sampled_from(["a", "\n", "\r", "é", "€"]), max_size=50)


def text_ops(writable: bool) -> st.SearchStrategy[list[Op]]:
    op = st.one_of(
        st.tuples(st.just("read"), text_sizes),
        st.tuples(st.just("readline"), text_sizes),
        st.tuples(st.just("tell")),
        st.tuples(st.just("seek_cookie"), st.integers(0, 10)),
        st.tuples(st.just("seek"), st.just(0), st.sampled_from([0, 1, 2])),
        st.tuples(st.just("readlines")),
        *(
            [st.tuples(st.just("write"), text_data), st.tuples(st.just("flush"))]
            if writable
            else []
        ),
    )
    return st.lists(op, max_size=20)


NEWLINES = [None, "", "\n", "\r", "\r\n"]


@BACKENDS
@pytest.mark.parametrize("newline", NEWLINES, ids=repr)
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "latin-1", "utf-8-sig"])
def test_text_reading(backend: str, newline: str | None, encoding: str) -> None:
    @SETTINGS
    @given(text=text_contents, ops=text_ops(False))
    def check(text: str | None, ops: list[Op]) -> None:
        content = None
        if text is not None:
            content = text.encode(encoding, errors="replace")
        with tempfile.TemporaryDirectory() as tmp:
            expected, got = compare(
                backend, tmp, "r", content, ops, encoding=encoding, newline=newline,
                errors="replace",
            )  # fmt: skip
        assert got == expected

    check()


@BACKENDS
@pytest.mark.parametrize("newline", NEWLINES, ids=repr)
@pytest.mark.parametrize("mode", ["r+", "w", "w+", "a", "a+"])
def test_text_writing(backend: str, newline: str | None, mode: str) -> None:
    @SETTINGS
    @given(text=text_contents, ops=text_ops(True))
    def check(text: str | None, ops: list[Op]) -> None:
        content = None if text is None else text.encode("utf-8")
        with tempfile.TemporaryDirectory() as tmp:
            expected, got = compare(
                backend, tmp, mode, content, ops, encoding="utf-8", newline=newline
            )
        assert got == expected

    check()


# -- fixed cases ------------------------------------------------------------


def check_same(backend: str, mode: str, content: bytes | None, ops: list[Op], **kw: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        expected, got = compare(backend, tmp, mode, content, ops, **kw)
    assert got == expected


@BACKENDS
def test_append_plus_truncate_read_write(backend: str) -> None:
    # Every write in append mode goes to the end; the position follows it.
    ops: list[Op] = [
        ("truncate", 0), ("read", -1), ("write", b"x"), ("tell",), ("seek", 0, 0),
        ("read", -1), ("tell",),
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        expected, got = compare(backend, tmp, "a+b", b"0123456789", ops)
    assert expected[5] == ("ok", b"x")
    assert got == expected


@BACKENDS
@pytest.mark.parametrize("buffering", [-1, 0])
def test_partial_reads_at_eof(backend: str, buffering: int) -> None:
    ops: list[Op] = [
        ("seek", -3, 2), ("read", 10), ("read", 10), ("read", 0), ("seek", -2, 2),
        ("readinto", 8), ("readline", -1), ("seek", 100, 0), ("read", 5), ("tell",),
        ("readall",),
    ]  # fmt: skip
    check_same(backend, "rb", b"abcdefgh", ops, buffering=buffering)


@BACKENDS
@pytest.mark.parametrize("mode", ["ab", "a+b", "a", "a+"])
def test_appends(backend: str, mode: str) -> None:
    w = "x" if "b" not in mode else b"x"
    ops: list[Op] = [
        ("tell",), ("write", w), ("seek", 0, 0), ("write", w * 3), ("tell",), ("flush",),
        ("tell",), ("seek", 0, 0), ("read", -1), ("truncate", 2), ("write", w), ("flush",),
        ("seek", 0, 2),
    ]  # fmt: skip
    check_same(backend, mode, b"start", ops)


@BACKENDS
def test_seek_tell_arithmetic(backend: str) -> None:
    ops: list[Op] = [
        ("seek", 5, 0), ("tell",), ("seek", 3, 1), ("tell",), ("seek", -2, 1), ("tell",),
        ("seek", -4, 2), ("tell",), ("seek", -100, 1), ("tell",), ("seek", 10**6, 0),
        ("tell",), ("read", 3), ("write", b"end"), ("tell",), ("seek", 0, 5), ("seek", 1.5, 0),
        ("seek", 0, 3), ("seek", 0, 4),
    ]  # fmt: skip
    for buffering in (-1, 0, 3):
        check_same(backend, "r+b", bytes(range(64)), ops, buffering=buffering)


OPEN_ERRORS: list[tuple[str, dict[str, Any]]] = [
    ("rw", {}), ("rr", {}), ("", {}), ("b", {}), ("rbt", {}), ("U", {}), ("r++", {}),
    ("q", {}), ("rb", {"encoding": "utf-8"}), ("rb", {"errors": "strict"}),
    ("rb", {"newline": ""}), ("r", {"buffering": 0}), ("w", {"newline": "x"}),
    ("w", {"encoding": "nonexistent"}), ("w", {"encoding": "hex"}), ("r", {"encoding": 5}),
    ("r", {"buffering": "x"}), ("r", {"newline": 3}), ("rb", {"buffering": -5}),
]  # fmt: skip


@BACKENDS
@pytest.mark.parametrize(("mode", "kwargs"), OPEN_ERRORS)
def test_bad_open_arguments(backend: str, mode: str, kwargs: dict[str, Any]) -> None:
    for content in (b"abc", None):
        check_same(backend, mode, content, [("read", -1)], **kwargs)


@BACKENDS
def test_mode_argument_type(backend: str) -> None:
    check_same(backend, 5, b"", [])  # type: ignore[arg-type]


@BACKENDS
@pytest.mark.parametrize("mode", ["r", "rb", "w", "r+b", "a", "x"])
def test_missing_files_and_directories(backend: str, mode: str) -> None:
    from .files_oracle import on_backend, run_async, run_sync

    with tempfile.TemporaryDirectory() as tmp:
        for path in (os.path.join(tmp, "missing", "f"), tmp, os.path.join(tmp, "nodir")):
            expected = run_sync(path, mode, [("read", -1)])
            if os.path.exists(path) and not os.path.isdir(path):
                os.unlink(path)
            got = on_backend(backend, run_async, path, mode, [("read", -1)])
            if os.path.exists(path) and not os.path.isdir(path):
                os.unlink(path)
            assert got == expected, path


@BACKENDS
def test_wrong_encoding_while_reading(backend: str) -> None:
    check_same(backend, "r", "é€".encode(), [("read", -1)], encoding="ascii")
    check_same(backend, "r", "é€\nab".encode(), [("readline", -1), ("read", 1)], encoding="ascii",
               errors="replace")  # fmt: skip
    check_same(backend, "r", b"\xff\xfeabc", [("read", 2), ("read", -1)], encoding="utf-8",
               errors="surrogateescape")  # fmt: skip


@BACKENDS
def test_names_modes_and_closed(backend: str) -> None:
    import trio_uring

    from .files_oracle import on_backend

    async def attrs(path: str) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for mode in ["w", "r", "rb", "r+b", "w+b", "a+", "ab", "rt"]:
            f = await trio_uring.open_file(path, mode)
            out.append((f.name, f.mode, f.closed))
            await f.aclose()
            out.append((f.closed,))
        return out

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "f")
        expected: list[tuple[Any, ...]] = []
        for mode in ["w", "r", "rb", "r+b", "w+b", "a+", "ab", "rt"]:
            f = open(path, mode)  # noqa: SIM115
            expected.append((f.name, f.mode, f.closed))
            f.close()
            expected.append((f.closed,))
        assert on_backend(backend, attrs, path) == expected
