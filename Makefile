# ledgerlink — `make help` lists the targets.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PORT ?= 8000
export LEDGERLINK_DATABASE_URL ?= sqlite+aiosqlite:///./var/ledgerlink.db
RUN_ENV = LEDGERLINK_SANDBOX=$${LEDGERLINK_SANDBOX:-true} \
  LEDGERLINK_PUBLIC_BASE_URL=$${LEDGERLINK_PUBLIC_BASE_URL:-http://127.0.0.1:$(PORT)} \
  LEDGERLINK_ALLOWED_REDIRECT_URIS=$${LEDGERLINK_ALLOWED_REDIRECT_URIS:-http://localhost:3000/callback,http://127.0.0.1:$(PORT)/sandbox/callback} \
  LEDGERLINK_LOG_JSON=$${LEDGERLINK_LOG_JSON:-false}

# pytest-xdist: each worker has its own database and queue; tests mostly wait on I/O and servers, so 4
# workers beat 2 on a 2-core machine. The long tests start first (tests/conftest.py); TEST_WORKERS=0 runs
# the suite in one process.
TEST_WORKERS ?= 4
TEST_PARALLEL = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder)

.DEFAULT_GOAL := help
.PHONY: help install run test lint fmt openapi migrate worker bench soak clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## Install uv if missing and sync the locked dependencies into .venv
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

run: install ## Migrate, seed the dev company and serve the API on :8000 with the sandbox bank and Fortnox
	@mkdir -p var
	@$(UV) run ledgerlink migrate
	@$(UV) run ledgerlink seed-dev
	@echo ""
	@echo "  ledgerlink is starting on http://127.0.0.1:$(PORT)"
	@echo "  API docs:  http://127.0.0.1:$(PORT)/docs   (click Authorize and paste the token)"
	@echo "  Redirect URI for bank and Fortnox logins: http://127.0.0.1:$(PORT)/sandbox/callback"
	@echo "  Dev token (company Demo AB, scopes banking closing):"
	@echo ""
	@echo "  $$($(UV) run ledgerlink dev-token)"
	@echo ""
	@echo "  Stop with Ctrl+C; make clean deletes the local SQLite database."
	@echo ""
	@if [ -n "$${LEDGERLINK_REDIS_URL:-}" ]; then \
	  echo "  LEDGERLINK_REDIS_URL is set: starting an arq worker beside the API."; \
	  $(RUN_ENV) $(UV) run ledgerlink worker & \
	fi; \
	$(RUN_ENV) exec $(UV) run ledgerlink api --port $(PORT)

test: install ## Run the whole test suite against real PostgreSQL and Redis (started if installed but stopped)
	@bash scripts/test-services
	@$(UV) run pytest -q -p no:cacheprovider $(TEST_PARALLEL); status=$$?; \
	  if [ $$status -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$status

soak: install ## Run the resilience suite at full size
	@bash scripts/test-services
	@LEDGERLINK_SOAK=full $(UV) run pytest -m "resilience" -q -p no:cacheprovider

lint: install ## ruff (lint + format check) and mypy
	@$(UV) run ruff check src tests bench
	@$(UV) run ruff format --check src tests bench
	@$(UV) run mypy

fmt: install ## Format and auto-fix
	@$(UV) run ruff format src tests bench
	@$(UV) run ruff check --fix src tests bench

openapi: install ## Regenerate openapi.yaml from the app
	@$(UV) run ledgerlink openapi --output openapi.yaml

migrate: install ## Apply migrations to LEDGERLINK_DATABASE_URL
	@mkdir -p var
	@$(UV) run ledgerlink migrate

worker: install ## Run the arq worker (needs LEDGERLINK_REDIS_URL)
	@$(UV) run ledgerlink worker

bench: install ## Run the benchmarks (PostgreSQL and Redis needed); results in bench/results and bench/README.md
	@bash scripts/test-services
	@$(UV) run python -m bench

clean: ## Remove local state (SQLite database, caches)
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
