"""``python cli.py ...`` runs the same command line as ``autodnn ...``."""

import sys

from autodnn.cli import main

if __name__ == "__main__":
    sys.exit(main())
