"""Thin HTTP endpoints: parse and validate before the first byte, then hand over to the service."""
