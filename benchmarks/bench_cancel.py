"""Mass cancellation benchmark: stock Trio vs trio_uring (see ``trio_uring._bench.cancel``)."""

import sys

from trio_uring._bench.cancel import main

if __name__ == "__main__":
    sys.exit(main())
