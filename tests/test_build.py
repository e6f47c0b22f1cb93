"""Install-time checks: the C shim's build refuses clearly, Trio's version is checked."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import trio

import trio_uring
from trio_uring._core import compat as _compat

BUILD_SCRIPT = Path(__file__).resolve().parent.parent / "trio_uring" / "_core" / "_ffi_build.py"


def load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_tu_ffi_build", BUILD_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_header_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    build = load_build_script()
    monkeypatch.setattr(build, "HEADER", "/nonexistent/linux/io_uring.h")
    with pytest.raises(build.BuildError, match=r"linux-libc-dev"):
        build.make_ffi()


def test_missing_compiler_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    build = load_build_script()
    monkeypatch.setenv("CC", "no-such-compiler")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(build.BuildError, match=r"apt-get install gcc"):
        build.make_ffi()


def test_wrong_platform_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    build = load_build_script()
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(build.BuildError, match="needs Linux"):
        build.make_ffi()


@pytest.mark.parametrize("version", ["0.22.2", "0.36.0", "1.0.0", "garbage"])
def test_unsupported_trio_is_refused(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setattr(trio, "__version__", version)
    with pytest.raises(trio_uring.UnsupportedTrioError, match="Trio"):
        trio_uring.install()
    assert not trio_uring.is_installed()


def test_changed_trio_internals_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from trio._core import _run

    monkeypatch.delattr(_run, "setup_runner")
    with pytest.raises(trio_uring.UnsupportedTrioError, match="setup_runner"):
        _compat.trio_run_module()
