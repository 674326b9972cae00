"""Serve an OpenAI-compatible LLM (OpenAI, vLLM, Ollama, ...) as an agent: streaming, tool calls, real usage.

Configure it with environment variables, then serve this file::

    RUNTIME_LLM_BASE_URL=http://127.0.0.1:11434/v1 RUNTIME_LLM_MODEL=llama3.2 \
        runtime serve examples/llm_agent.py

    RUNTIME_LLM_MODEL=gpt-4o-mini RUNTIME_LLM_API_KEY=sk-... RUNTIME_LLM_API=responses \
        runtime serve examples/llm_agent.py

``RUNTIME_LLM_BASE_URL`` defaults to https://api.openai.com/v1, ``RUNTIME_LLM_API`` to ``chat`` (Chat
Completions; ``responses`` for the Responses API); ``RUNTIME_LLM_TIMEOUT`` and ``RUNTIME_LLM_SYSTEM_PROMPT``
are optional. The key is sent only to the upstream, never logged or traced.
"""

from runtime.agents import set_agent
from runtime.agents.builtin import OpenAICompatibleAgent

set_agent(OpenAICompatibleAgent.from_env())
