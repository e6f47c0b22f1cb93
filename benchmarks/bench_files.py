"""File reads benchmark: trio.open_file vs trio_uring.open_file (see ``trio_uring._bench.files``)."""

import sys

from trio_uring._bench.files import main

if __name__ == "__main__":
    sys.exit(main())
