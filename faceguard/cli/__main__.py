"""`python -m faceguard.cli`: the same as the `faceguard` console script."""

import sys

from faceguard.cli import main

sys.exit(main())
