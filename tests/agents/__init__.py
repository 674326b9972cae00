"""Tests of runtime.agents."""
