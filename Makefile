# Interlock: `make run` runs the main job on the embedded broker; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYSTEM_TOOLS := .interlock/.system-tools

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

.PHONY: install
install: $(STAMP) ## Create .venv if missing and install Interlock with its test tools

.PHONY: system-tools
system-tools: ## Install the Debian tools the tests use (PostgreSQL, Prometheus, a JDK, Maven, Chromium, valgrind) when missing
	@./scripts/install-system-tools.sh

.PHONY: bench-tools
bench-tools: ## Install the Debian tools the benchmarks use (wrk, valgrind) when missing
	@./scripts/install-system-tools.sh bench

.PHONY: run
run: install ## Run the main job (interlock up) on the embedded broker (Apache Kafka where Java 17 runs); Ctrl-C stops it
	$(BIN)/interlock up $(ARGS)

.PHONY: lint
lint: install ## ruff lint and format check, and the import layers (lint-imports, pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

.PHONY: typecheck
typecheck: install ## mypy on every package
	$(BIN)/mypy

.PHONY: docs
docs: install ## Build the docs site strictly (a broken link or anchor fails) into .interlock/site
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

PYTEST_WORKERS ?= 2

.PHONY: pytest
pytest: install system-tools ## The test suite on Apache Kafka, on PYTEST_WORKERS pytest-xdist workers (INTERLOCK_TEST_BROKER=tansu: on Tansu)
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

.PHONY: smoke-tansu
smoke-tansu: install ## The no-Java fallback: interlock up, and a short checked simulation, on Tansu
	INTERLOCK_EMBEDDED_BROKER=tansu $(BIN)/interlock up --for 15
	INTERLOCK_EMBEDDED_BROKER=tansu $(BIN)/interlock up --simulate 100 --for 30 --check --seed 7

.PHONY: test
test: lint typecheck docs pytest smoke-tansu ## Everything CI checks: ruff, mypy, the docs site, pytest on Apache Kafka, the Tansu lane

.PHONY: format
format: install ## Format the code in place
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: chaos
chaos: install system-tools ## The fault suite: up --simulate --check with seeded faults; writes bench/results/CHAOS.md (CHAOS_ARGS='--quick')
	$(BIN)/interlock chaos $(CHAOS_ARGS)

.PHONY: bench
bench: install bench-tools ## Run the benchmarks and write bench/results/ (BENCH_ARGS='--only serde --quick')
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/pip install --quiet --no-deps 'quixstreams>=3,<4'
	$(BIN)/python -m bench.run $(BENCH_ARGS)

.PHONY: clean
clean: ## Remove the virtualenv, caches and local state
	rm -rf $(VENV) .interlock .mypy_cache .ruff_cache .pytest_cache
