"""``python -m autodnn``: the same command line as ``autodnn``."""

import sys

from autodnn.cli import main

sys.exit(main())
