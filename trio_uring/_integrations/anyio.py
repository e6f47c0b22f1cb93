"""The anyio backend ``"trio_uring"``: anyio's own Trio backend, running on io_uring.

anyio has no registry for third-party backends: ``anyio.run(backend=NAME)``
and its pytest plugin import ``anyio._backends._NAME`` and use that module's
``backend_class``. So ``import trio_uring`` appends a finder to the end of
``sys.meta_path`` that answers for exactly one name,
``anyio._backends._trio_uring``, and only when anyio asks for it: importing
trio_uring never imports anyio, and a backend anyio itself shipped under that
name would be found first.

The backend class is a subclass of the class anyio's Trio backend module
names as ``backend_class`` (the one contract anyio itself relies on), so
every anyio API behaves as on ``backend="trio"``. It overrides only the two
entry points that start Trio: ``run`` (``trio.run``) and
``create_test_runner`` (``trio.lowlevel.start_guest_run``, used by anyio's
pytest plugin). Around them Trio builds our I/O manager, and sniffio's
context variable says ``"trio"``, not ``"trio_uring"``, so code that asks
sniffio which library runs it, and anyio's lookup of the current backend,
see Trio.

Backend options: ours (``fallback``, ``entries``, ``linked_timeouts``, as
for ``trio_uring.run``) are taken out; the rest go to Trio unchanged.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Sequence,
)
from contextlib import contextmanager
from importlib import import_module
from typing import TYPE_CHECKING, Any, TypeVar

import sniffio

from .._core.compat import trio_run_module
from .._core.settings import Settings, set_settings
from .run import _SwitchingManager

if TYPE_CHECKING:
    from anyio.abc import AsyncBackend

T = TypeVar("T")

BACKEND_NAME = "trio_uring"
"""The name to pass as ``anyio.run(..., backend=...)`` or as ``anyio_backend``."""
MODULE_NAME = f"anyio._backends._{BACKEND_NAME}"
OPTION_NAMES = ("fallback", "entries", "linked_timeouts", "data_path", "mode", "sqpoll_idle")


def split_options(options: dict[str, Any]) -> tuple[Settings, dict[str, Any]]:
    """Separate trio_uring's backend options from Trio's; validate ours."""
    ours = {name: options[name] for name in OPTION_NAMES if name in options}
    linked = ours.get("linked_timeouts", True)
    if not isinstance(linked, bool):
        raise TypeError(f"linked_timeouts must be a bool, not {type(linked).__name__}")
    # Settings checks entries and fallback and raises on a bad value.
    settings = Settings(**ours)
    return settings, {k: v for k, v in options.items() if k not in OPTION_NAMES}


@contextmanager
def uring_selected(settings: Settings) -> Iterator[None]:
    """Within: Trio builds its I/O manager on io_uring, and sniffio says "trio".

    Trio builds the manager when a run starts (``trio.run`` or
    ``start_guest_run``), so this must cover that moment; what was in force
    before (the process-wide switch, say) is restored on exit.
    """
    run_mod = trio_run_module()
    previous_cls = run_mod.TheIOManager
    previous_settings = set_settings(settings)
    run_mod.TheIOManager = _SwitchingManager
    library = sniffio.current_async_library_cvar.set("trio")
    try:
        yield
    finally:
        sniffio.current_async_library_cvar.reset(library)
        run_mod.TheIOManager = previous_cls
        set_settings(previous_settings)


@functools.cache
def backend_class() -> type[AsyncBackend]:
    """Build the ``"trio_uring"`` backend class (imports anyio; done once)."""
    from anyio.abc import TestRunner

    trio_backend: type[AsyncBackend] = import_module("anyio._backends._trio").backend_class

    class UringTestRunner(TestRunner):
        """anyio's Trio test runner, with its guest run started on io_uring.

        The guest run starts inside whichever call comes first, so every
        call runs under ``uring_selected``; each call restores what it found.
        """

        def __init__(self, inner: TestRunner, settings: Settings) -> None:
            self._inner = inner
            self._settings = settings

        def __enter__(self) -> UringTestRunner:
            self._inner.__enter__()
            return self

        def __exit__(
            self,
            exc_type: type[BaseException] | None,
            exc_val: BaseException | None,
            exc_tb: types.TracebackType | None,
        ) -> bool | None:
            with uring_selected(self._settings):
                return self._inner.__exit__(exc_type, exc_val, exc_tb)

        def run_asyncgen_fixture(
            self,
            fixture_func: Callable[..., AsyncGenerator[T, Any]],
            kwargs: dict[str, Any],
        ) -> Iterable[T]:
            steps = iter(self._inner.run_asyncgen_fixture(fixture_func, kwargs))
            try:
                while True:
                    # Not across the yield: the test itself runs in between.
                    with uring_selected(self._settings):
                        try:
                            value = next(steps)
                        except StopIteration:
                            return
                    yield value
            finally:
                close = getattr(steps, "close", None)
                if close is not None:
                    with uring_selected(self._settings):
                        close()

        def run_fixture(
            self, fixture_func: Callable[..., Coroutine[Any, Any, T]], kwargs: dict[str, Any]
        ) -> T:
            with uring_selected(self._settings):
                return self._inner.run_fixture(fixture_func, kwargs)

        def run_test(
            self, test_func: Callable[..., Coroutine[Any, Any, Any]], kwargs: dict[str, Any]
        ) -> None:
            with uring_selected(self._settings):
                self._inner.run_test(test_func, kwargs)

        def is_running(self) -> bool:
            return self._inner.is_running()

    # The base class is whatever anyio's Trio module calls backend_class.
    class TrioUringBackend(trio_backend):  # type: ignore[misc,valid-type]
        """anyio's Trio backend, starting its runs on io_uring."""

        @classmethod
        def run(
            cls,
            func: Callable[..., Awaitable[T]],
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
            options: dict[str, Any],
        ) -> T:
            settings, trio_options = split_options(options)
            with uring_selected(settings):
                result: T = super().run(func, args, kwargs, trio_options)
            return result

        @classmethod
        def create_test_runner(cls, options: dict[str, Any]) -> TestRunner:
            settings, trio_options = split_options(options)
            return UringTestRunner(super().create_test_runner(trio_options), settings)

    return TrioUringBackend


class _BackendLoader(importlib.abc.Loader):
    """Fills ``anyio._backends._trio_uring`` with the one name anyio reads."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        module.__doc__ = __doc__
        module.backend_class = backend_class()  # type: ignore[attr-defined]


class BackendFinder(importlib.abc.MetaPathFinder):
    """Finds ``anyio._backends._trio_uring`` and nothing else."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != MODULE_NAME:
            return None
        return importlib.util.spec_from_loader(fullname, _BackendLoader(), origin=__name__)


def register() -> None:
    """Make ``"trio_uring"`` an anyio backend name (idempotent; imports nothing)."""
    if not any(isinstance(finder, BackendFinder) for finder in sys.meta_path):
        sys.meta_path.append(BackendFinder())
