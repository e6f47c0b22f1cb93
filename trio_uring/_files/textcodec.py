"""What a text file's arguments and positions mean, as ``TextIOWrapper`` defines them.

The encoding and ``newline`` checks ``open`` makes, and the ``tell()``
cookie: packing, unpacking, and the search that finds a cookie for a point
in decoded text (the C ``TextIOWrapper``'s, so the numbers are the same).
No I/O here; ``text.py`` does it.
"""

from __future__ import annotations

import codecs
import io
import locale
from collections.abc import Callable
from typing import Any

_text_encoding: Callable[[str | None, int], str] = io.text_encoding  # type: ignore[attr-defined,unused-ignore]
_MASK64 = (1 << 64) - 1
_MASK32 = (1 << 32) - 1


def text_encoding(encoding: str | None, stacklevel: int = 2) -> str:
    """``io.text_encoding``: "locale" for None (``EncodingWarning`` if asked for)."""
    return _text_encoding(encoding, stacklevel + 1)


def resolve_encoding(encoding: str | None) -> str:
    """``encoding`` as ``TextIOWrapper`` resolves it (None/"locale": the locale's)."""
    if encoding is None or encoding == "locale":
        # UTF-8 mode (-X utf8) makes this "utf-8", as for open().
        return locale.getpreferredencoding(False)
    return encoding


def check_text_args(encoding: str, newline: str | None) -> codecs.CodecInfo:
    """``TextIOWrapper``'s checks of ``newline`` and the codec.

    :raises ValueError: an illegal ``newline``.
    :raises LookupError: an unknown encoding, or one that is not a text encoding.
    """
    if newline not in (None, "", "\n", "\r", "\r\n"):
        raise ValueError(f"illegal newline value: {newline}")
    info = codecs.lookup(encoding)
    if not getattr(info, "_is_text_encoding", True):
        raise LookupError(
            f"{encoding!r} is not a text encoding; use codecs.open() to handle arbitrary codecs"
        )
    return info


def pack_cookie(
    position: int, dec_flags: int = 0, feed: int = 0, skip: int = 0, eof: bool = False
) -> int:
    """The C ``TextIOWrapper``'s ``tell()`` cookie for these fields."""
    # The C TextIOWrapper's cookie (what open() gives): the bytes of a packed
    # struct {off_t start_pos; int dec_flags, bytes_to_feed, chars_to_skip;
    # char need_eof;} read as a little-endian unsigned int.
    return position | (dec_flags << 64) | (feed << 96) | (skip << 128) | (int(eof) << 160)


def unpack_cookie(cookie: int) -> tuple[int, int, int, int, bool]:
    """A cookie's fields: position, decoder flags, bytes to feed, chars to skip, EOF."""
    position = cookie & _MASK64
    dec_flags = (cookie >> 64) & _MASK32
    feed = (cookie >> 96) & _MASK32
    skip = (cookie >> 128) & _MASK32
    eof = (cookie >> 160) & 0xFF
    return position, dec_flags, feed, skip, bool(eof)


def reconstruct(
    decoder: Any,
    position: int,
    flags: int,
    fed: bytes,
    skip: int,
    chunk: tuple[int, bytes, bytes, int],
) -> tuple[int, int, int, int, bool]:
    """The cookie fields for ``skip`` characters into ``fed`` (decoded from ``flags``).

    The C TextIOWrapper's search, so the cookie is the same number: a
    quick guess from the chunk's bytes-per-character ratio for a clean
    point at or before the target, then byte by byte from there,
    moving the start to each later clean point (the decoder holds no
    bytes) not past the target.
    """
    ratio = len(chunk[2]) / chunk[3] if chunk[3] else 0.0
    skip_bytes = int(ratio * skip)
    skip_back = 1
    while skip_bytes > 0:
        decoder.setstate((b"", flags))
        chars = len(decoder.decode(fed[:skip_bytes]))
        if chars <= skip:
            held, now_flags = decoder.getstate()
            if not held:
                flags = now_flags
                skip -= chars
                break
            skip_bytes -= len(held)
            skip_back = 1
        else:
            skip_bytes -= skip_back
            skip_back *= 2
    if skip_bytes <= 0:
        skip_bytes = 0
        decoder.setstate((b"", flags))
    start = position + skip_bytes
    if skip == 0:
        return start, flags, 0, 0, False
    bytes_fed = chars = 0
    for i in range(skip_bytes, len(fed)):
        bytes_fed += 1
        chars += len(decoder.decode(fed[i : i + 1]))
        held, now_flags = decoder.getstate()
        if not held and chars <= skip:
            # The decoder is clean here: a point seek() can restart from.
            start += bytes_fed
            skip -= chars
            flags = now_flags
            bytes_fed = chars = 0
        if chars >= skip:
            return start, flags, bytes_fed, skip, False
    chars += len(decoder.decode(b"", True))
    if chars < skip:
        raise OSError("can't reconstruct logical file position")
    return start, flags, bytes_fed, skip, True
