"""TCP echo benchmark: stock Trio vs trio_uring (see ``trio_uring._tools.bench.echo``)."""

import sys

from trio_uring._tools.bench.echo import main

if __name__ == "__main__":
    sys.exit(main())
