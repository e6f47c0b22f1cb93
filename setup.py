"""Build glue that pyproject.toml cannot express: the cffi extension and the .pth hook."""

from __future__ import annotations

import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH_NAME = "trio_uring_autoinstall.pth"
# One line, executed by site.py at interpreter start-up. It costs one
# environment lookup unless TRIO_URING_INSTALL is set, and only then imports
# anything: this is how child processes (and code we don't own) get the
# process-wide switch without editing their source.
PTH_LINE = (
    "import os; os.environ.get('TRIO_URING_INSTALL', '') not in ('', '0') "
    "and __import__('trio_uring._autoinstall')\n"
)


class BuildPyWithPth(build_py):
    """Also place the start-up hook at the root of the install."""

    def run(self) -> None:
        """Build as usual, then write the .pth file into the build tree."""
        super().run()
        target = os.path.join(self.build_lib, PTH_NAME)
        with open(target, "w", encoding="ascii") as f:
            f.write(PTH_LINE)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        """Declare the .pth file, so installers record (and uninstall) it."""
        return [*super().get_outputs(include_bytecode), os.path.join(self.build_lib, PTH_NAME)]


setup(
    cffi_modules=["src/trio_uring/_ffi_build.py:ffibuilder"],
    cmdclass={"build_py": BuildPyWithPth},
)
