"""Types of the C module ``_streamfast.c``: SocketStream's two hot methods (see ``stream.py``)."""

from collections.abc import Callable, Generator
from typing import Any

class FastCall:
    """One ``receive_some`` or ``send_all`` call: a coroutine written in C."""

    cr_await: Any
    cr_frame: None
    def send(self, value: Any, /) -> Any:
        """Resume with a value (the coroutine protocol)."""
    def throw(self, typ: Any, val: Any = ..., tb: Any = ..., /) -> Any:
        """Raise an exception where the call stands (the coroutine protocol)."""
    def close(self) -> None:
        """Finish now (the coroutine protocol)."""
    def __await__(self) -> Generator[Any, Any, Any]:
        """The call itself."""

def configure(
    native_socket: type,
    run_context: Any,
    shielded: Any,
    counts: dict[str, int],
    receive_some: Callable[..., Any],
    receive_rest: Callable[..., Any],
    send_all: Callable[..., Any],
    send_rest: Callable[..., Any],
    translated: Callable[[OSError], Any],
    default_receive_size: int,
    value_type: type,
    /,
) -> None:
    """Hand the module what it reads and where it hands over (once, before any call)."""

def receive_some(stream: Any, max_bytes: int | None = None, /) -> FastCall:
    """The awaitable of one ``receive_some`` call."""

def send_all(stream: Any, data: Any, /) -> FastCall:
    """The awaitable of one ``send_all`` call."""

def method(func: Callable[..., Any], /) -> Any:
    """``func``, bound as a method where a class holds it."""
