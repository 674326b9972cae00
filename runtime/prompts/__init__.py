"""Prompts for agent code: versioned, cached, alias-aware, and recorded on every trace that uses them.

::

    from runtime.prompts import load_prompt

    class SupportAgent(ResponsesAgent):
        def predict(self, request):
            prompt = load_prompt("prompts:/support@production", fallback="You are a helpful agent.")
            system = prompt.format(product="Acme")
            ...

Call ``load_prompt`` per request rather than once at import: it is answered from memory, follows alias
moves, and records on the request's trace which prompt version produced the answer. Async agents may use
``aload_prompt``, which keeps store reads off the event loop. Prompts are registered with
``registry.RegistryClient.register_prompt`` or ``runtime prompts register``.
"""

from __future__ import annotations

from registry.entities import PromptVersion
from runtime.prompts.api import aload_prompt, configure, current_loader, load_prompt, unconfigure
from runtime.prompts.loader import FallbackPrompt, PromptLoader

__all__ = [
    "FallbackPrompt",
    "PromptLoader",
    "PromptVersion",
    "aload_prompt",
    "configure",
    "current_loader",
    "load_prompt",
    "unconfigure",
]
