"""Entry point of the bundled app: point FaceGuard at the bundle's models, then run the CLI."""

import os
import sys
from pathlib import Path

if getattr(sys, "frozen", False):
    bundle = Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))
    os.environ.setdefault("FACEGUARD_MODELS_DIR", str(bundle / "models"))

from faceguard.cli import main  # noqa: E402

sys.exit(main())
