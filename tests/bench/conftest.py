"""Make the project's ``bench/`` importable: it is a top-level folder, not part of the installed packages."""

from __future__ import annotations

import sys
from pathlib import Path

_PROJECT = str(Path(__file__).resolve().parents[2])
if _PROJECT not in sys.path:
    sys.path.insert(0, _PROJECT)
