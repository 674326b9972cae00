"""Agent Runtime: serve ResponsesAgents over HTTP with tracing, online evaluation and canaries."""

from runtime.version import __version__

__all__ = ["__version__"]
