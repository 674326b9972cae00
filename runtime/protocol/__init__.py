"""Wire models: MLflow's ResponsesAgent JSON and the OpenAI Responses API, in one place."""
