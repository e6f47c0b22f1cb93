"""Benchmark engines: stock Trio and trio_uring side by side, in one run.

Each module measures one workload on both backends and reports ratios;
``python -m trio_uring bench`` runs them all, and the scripts under the
repository's ``benchmarks/`` run them one at a time with every option.
They are part of the package so that an installed trio_uring can show
what it buys on the machine it is installed on.
"""

from pathlib import Path


def worker_cwd() -> str:
    """The directory a benchmark's ``python -m`` worker process starts in.

    ``python -m`` puts its working directory first on ``sys.path``. Started
    from a checkout's root (as ``make demo`` is), a worker would import the
    uncompiled source tree instead of the installed package, and measure
    nothing it should. The directory that holds the package the driver
    itself imported is the one place where ``-m`` finds that same package.
    """
    return str(Path(__file__).resolve().parents[3])
