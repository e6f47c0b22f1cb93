"""Bulk streaming benchmark: stock Trio vs trio_uring (see ``trio_uring._bench.streaming``)."""

import sys

from trio_uring._bench.streaming import main

if __name__ == "__main__":
    sys.exit(main())
