"""`python3 -m faceguard ...`: the `faceguard` command, also where the virtualenv's bin/ is not
on PATH (a virtualenv that was never activated)."""

import sys

from faceguard.cli import main

if __name__ == "__main__":
    sys.exit(main())
