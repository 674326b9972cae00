"""Benchmark harness: the runtime side by side with bare Starlette and MLflow 3 on loopback.

Run ``python -m bench --help``. Nothing here is part of the product: it lives outside ``runtime/`` so the
product never imports it.
"""
