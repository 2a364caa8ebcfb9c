# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-install-project
# The migrations ship inside the package (src/ledgerlink/migrations): the installed wheel migrates itself.
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 ledgerlink
WORKDIR /app
# Only the virtualenv: the project is installed into it (non-editable), the source tree stays behind.
COPY --from=build --chown=ledgerlink:ledgerlink /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1
USER ledgerlink
EXPOSE 8000
CMD ["ledgerlink", "api", "--host", "0.0.0.0", "--port", "8000"]
