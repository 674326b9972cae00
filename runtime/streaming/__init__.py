"""Agent events to wire events: the OpenAI Responses sequence, MLflow's framing, SSE encoding."""
