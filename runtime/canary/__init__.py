"""Canary releases: split or mirror traffic between a champion and a challenger version, compare them with
real statistics across every replica (state and counters in Redis), and promote or roll back.

- :mod:`~runtime.canary.model`: definition, status, audit entries
- :mod:`~runtime.canary.assignment`: the sticky hash that picks a variant
- :mod:`~runtime.canary.router`: per-request routing and the shadow runner
- :mod:`~runtime.canary.state`: Redis keys and the Lua scripts that keep them consistent
- :mod:`~runtime.canary.counters`, :mod:`~runtime.canary.recorder`, :mod:`~runtime.canary.scores`: counters
  and what feeds them (the telemetry tap, the evaluation hook)
- :mod:`~runtime.canary.stats`, :mod:`~runtime.canary.report`: tests, intervals, the verdict
- :mod:`~runtime.canary.policy`, :mod:`~runtime.canary.control`: who decides, and how decisions are applied
- :mod:`~runtime.canary.operator`: what the CLI and the HTTP API show and do, the same for both
- :mod:`~runtime.canary.replica`: what one server does

This package never imports the agents, streaming, observability or evaluation (an import contract holds
that); it meets them in ``runtime.serving`` and the composition root.
"""
