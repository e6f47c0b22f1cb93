"""``python -m trio_uring COMMAND``: the command-line tools (see ``_tools/cli.py``)."""

import sys

from ._tools.cli import main

sys.exit(main())
