"""Bulk streaming benchmark, stock Trio vs trio_uring: ``trio_uring._tools.bench.streaming``."""

import sys

from trio_uring._tools.bench.streaming import main

if __name__ == "__main__":
    sys.exit(main())
