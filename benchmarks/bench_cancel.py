"""Mass cancellation benchmark, stock Trio vs trio_uring: ``trio_uring._tools.bench.cancel``."""

import sys

from trio_uring._tools.bench.cancel import main

if __name__ == "__main__":
    sys.exit(main())
