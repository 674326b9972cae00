# Agent Runtime: a slim image that serves an agent with `runtime serve`.
#   docker build -t agent-runtime .
#   docker run -p 8080:8080 agent-runtime                       # the bundled echo agent
#   docker run -p 8080:8080 -e RUNTIME_STORE_URL=postgresql+psycopg://... agent-runtime models:/support-bot@champion
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    RUNTIME_HOST=0.0.0.0 RUNTIME_PORT=8080 RUNTIME_HOME=/data

WORKDIR /app
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY runtime ./runtime
COPY registry ./registry
COPY examples ./examples
RUN pip install --no-deps . \
    && useradd --create-home --uid 10001 runtime \
    && mkdir -p /data && chown runtime /data

USER runtime
EXPOSE 8080
VOLUME ["/data"]
# Shell form: the shell expands RUNTIME_PORT when the check runs, so `docker run -e RUNTIME_PORT=9000` is checked
# on 9000 (8080 when unset or empty).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:${RUNTIME_PORT:-8080}/health', timeout=2).status != 200)"
ENTRYPOINT ["runtime", "serve"]
CMD ["examples/echo_agent.py"]
