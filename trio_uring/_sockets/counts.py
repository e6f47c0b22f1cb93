"""The process-wide counters behind ``trio_uring.socket.statistics()``.

Cheap enough for every call, and they let a test prove that native sockets
were in use. A module of their own, below every other socket module, so
that each can count without importing another.
"""

from __future__ import annotations

from typing import Final

COUNTS: Final = {
    "sockets": 0,
    "direct": 0,
    "ops": 0,
    "multishot_armed": 0,
    "multishot_accepted": 0,
    "ahead_armed": 0,
    "ahead_chunks": 0,
}
