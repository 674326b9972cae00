"""Events shared between a test and the scorers file its in-process app loads (same interpreter)."""

from __future__ import annotations

import threading

started = threading.Event()
release = threading.Event()
