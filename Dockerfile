# The Interlock image used by docker-compose.yml: one image, one `interlock <command>` per service.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Dependencies first, so that code changes do not re-install them.
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY interlock ./interlock
COPY connectors ./connectors
COPY processors ./processors
COPY ops ./ops
RUN pip install . \
    && useradd --create-home --uid 10001 interlock \
    && mkdir -p /app/.interlock && chown interlock /app/.interlock

USER interlock
# Every service serves /metrics on this port (INTERLOCK_METRICS__PORT).
EXPOSE 9464
ENTRYPOINT ["interlock"]
CMD ["--help"]
