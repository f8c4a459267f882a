"""``python -m mml ...`` is the ``mml`` command (for environments whose scripts are not on PATH)."""

from __future__ import annotations

import sys

from mml.cli import main

if __name__ == "__main__":  # pragma: no branch
    sys.exit(main())
