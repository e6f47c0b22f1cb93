"""Mode and argument checks of ``open``, for ``trio_uring.open_file``.

``open`` validates its arguments in a fixed order and names each mistake
in its own words; callers switching from the builtin (or from
``trio.open_file``) should see the same exception for the same mistake.
This module does that checking and turns a mode string into the
``os.open`` flags and the facts the file object needs. It opens nothing.
"""

from __future__ import annotations

import io
import os
import warnings
from typing import Any, Final

import attrs

DEFAULT_BUFFER_SIZE: Final = io.DEFAULT_BUFFER_SIZE
_MODE_CHARS: Final = frozenset("rwxabt+")


@attrs.frozen
class Mode:
    """What a valid ``open`` mode string means."""

    text: bool
    reading: bool
    writing: bool
    appending: bool
    creating: bool
    updating: bool
    flags: int
    """``os.open`` flags (``O_CLOEXEC`` is added by the opener)."""

    @property
    def readable(self) -> bool:
        """Whether reads are allowed."""
        return self.reading or self.updating

    @property
    def writable(self) -> bool:
        """Whether writes are allowed."""
        return self.writing or self.appending or self.creating or self.updating

    @property
    def raw_mode(self) -> str:
        """The mode ``io.FileIO`` reports for these flags (``'w+'`` is ``'rb+'`` there)."""
        if self.creating:
            return "xb+" if self.readable else "xb"
        if self.appending:
            return "ab+" if self.readable else "ab"
        if self.readable:
            return "rb+" if self.writable else "rb"
        return "wb"


def _optional_str(value: Any, arg: str) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"open() argument '{arg}' must be str or None, not {type(value).__name__}")


def parse(mode: Any, buffering: Any, encoding: Any, errors: Any, newline: Any) -> tuple[Mode, int]:
    """Check ``open``'s arguments as ``open`` does; return the mode and the buffering.

    The buffering returned is ``-1`` (default), ``0`` (unbuffered),
    ``1`` (line buffered, text only) or a buffer size. Checks that ``open``
    makes only after opening the file (unbuffered text, the ``newline``
    value, the encoding's existence) are left to the caller, so that their
    side effects (a file created by ``"w"``) are the same as ``open``'s.

    :raises TypeError: a non-str mode, encoding, errors or newline; a
        non-int buffering.
    :raises ValueError: an invalid mode, or arguments that contradict it.
    """
    if not isinstance(mode, str):
        raise TypeError(f"open() argument 'mode' must be str, not {type(mode).__name__}")
    _optional_str(encoding, "encoding")
    _optional_str(errors, "errors")
    _optional_str(newline, "newline")
    if isinstance(buffering, bool) or not isinstance(buffering, int):
        # The words the builtin uses (it parses buffering with "i").
        raise TypeError(f"'{type(buffering).__name__}' object cannot be interpreted as an integer")
    chars = set(mode)
    if not chars <= _MODE_CHARS or len(mode) != len(chars):
        raise ValueError(f"invalid mode: '{mode}'")
    creating = "x" in chars
    reading = "r" in chars
    writing = "w" in chars
    appending = "a" in chars
    updating = "+" in chars
    text = "t" in chars
    binary = "b" in chars
    if text and binary:
        raise ValueError("can't have text and binary mode at once")
    if creating + reading + writing + appending > 1:
        raise ValueError("must have exactly one of create/read/write/append mode")
    if not (creating or reading or writing or appending):
        raise ValueError(
            "Must have exactly one of create/read/write/append mode and at most one plus"
        )
    if binary and encoding is not None:
        raise ValueError("binary mode doesn't take an encoding argument")
    if binary and errors is not None:
        raise ValueError("binary mode doesn't take an errors argument")
    if binary and newline is not None:
        raise ValueError("binary mode doesn't take a newline argument")
    if binary and buffering == 1:
        warnings.warn(
            "line buffering (buffering=1) isn't supported in binary mode, "
            "the default buffer size will be used",
            RuntimeWarning,
            stacklevel=3,
        )
        buffering = -1
    if updating:
        flags = os.O_RDWR
    elif reading:
        flags = os.O_RDONLY
    else:
        flags = os.O_WRONLY
    if writing:
        flags |= os.O_CREAT | os.O_TRUNC
    if creating:
        flags |= os.O_CREAT | os.O_EXCL
    if appending:
        flags |= os.O_APPEND | os.O_CREAT
    parsed = Mode(
        text=not binary, reading=reading, writing=writing, appending=appending,
        creating=creating, updating=updating, flags=flags,
    )  # fmt: skip
    return parsed, buffering


def buffer_size(buffering: int, st_blksize: int) -> int:
    """The buffer size ``open`` picks: ``buffering`` if > 1, else the block size (3.11 rule).

    Any negative ``buffering`` means the default, as in ``open``.
    """
    if buffering > 1:
        return buffering
    if st_blksize > 1:
        return st_blksize
    return DEFAULT_BUFFER_SIZE
