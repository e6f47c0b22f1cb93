"""Build glue that pyproject.toml cannot express: the cffi extension, the .pth hook
and the benchmark's C load generator."""

from __future__ import annotations

import os
import shutil
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

PTH_NAME = "trio_uring_autoinstall.pth"
# One line, executed by site.py at interpreter start-up. It costs one
# environment lookup unless TRIO_URING_INSTALL is set, and only then imports
# anything: this is how child processes (and code we don't own) get the
# process-wide switch without editing their source.
PTH_LINE = (
    "import os; os.environ.get('TRIO_URING_INSTALL', '') not in ('', '0') "
    "and __import__('trio_uring._integrations.autoinstall')\n"
)


# The echo benchmark's load generator is C (a Python client would measure
# itself). It is part of the package, built here beside the shim, so that
# `python -m trio_uring bench` compiles nothing and writes nothing at run time.
CLIENT_SOURCE = os.path.join("trio_uring", "_tools", "bench", "echo_client.c")
CLIENT_BINARY = os.path.join("trio_uring", "_tools", "bench", "echo_client")


class BuildPyWithPth(build_py):
    """Also place the start-up hook at the root of the install, and build the load generator."""

    def run(self) -> None:
        """Build as usual, then write the .pth file and compile the load generator."""
        super().run()
        target = os.path.join(self.build_lib, PTH_NAME)
        with open(target, "w", encoding="ascii") as f:
            f.write(PTH_LINE)
        self._build_client()

    def _build_client(self) -> None:
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or "gcc"
        out = os.path.join(self.build_lib, CLIENT_BINARY)
        cmd = [*cc.split(), "-O2", "-Wall", "-Wextra", "-Werror", "-o", out, CLIENT_SOURCE]
        self.announce(" ".join(cmd), level=2)
        subprocess.run(cmd, check=True)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        """Declare the .pth file and the load generator, so installers record them."""
        return [
            *super().get_outputs(include_bytecode),
            os.path.join(self.build_lib, PTH_NAME),
            os.path.join(self.build_lib, CLIENT_BINARY),
        ]


# SocketStream's receive_some and send_all direct attempts as a C coroutine
# (its opening comment says why that cannot be cffi). Warnings are errors,
# as for the shim, and TRIO_URING_CFLAGS (the ASan build's) applies too.
STREAMFAST = Extension(
    "trio_uring._sockets._streamfast",
    sources=["trio_uring/_sockets/_streamfast.c"],
    extra_compile_args=[
        "-O2", "-Wall", "-Wextra", "-Werror",
        *os.environ.get("TRIO_URING_CFLAGS", "").split(),
    ],
    extra_link_args=[f for f in os.environ.get("TRIO_URING_CFLAGS", "").split() if f.startswith("-fsanitize")],
)  # fmt: skip


setup(
    ext_modules=[STREAMFAST],
    cffi_modules=["trio_uring/_core/_ffi_build.py:ffibuilder"],
    cmdclass={"build_py": BuildPyWithPth},
)
