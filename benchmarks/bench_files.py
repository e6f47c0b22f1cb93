"""File reads benchmark: trio.open_file vs trio_uring (see ``trio_uring._tools.bench.files``)."""

import sys

from trio_uring._tools.bench.files import main

if __name__ == "__main__":
    sys.exit(main())
