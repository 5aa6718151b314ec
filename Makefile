# Developer entry points. `make` alone lists the targets.
#
# Variables (set on the command line, e.g. `make run ARGS='--processes=2 --debug'`):
#   VENV          virtual environment directory (default .venv)
#   ARGS          options for server.py                         (make run)
#   PYTEST_ARGS   options for pytest                            (make test)
#   USERS, DURATION, TARGET, LOADTEST_ARGS                      (make loadtest)
#   BENCH_ARGS    options for the benchmark                     (make bench)
#   STACK_ARGS    options for scripts/stack.sh                  (make stack)
#   DB_NAME       database created by `make db` (default appdb)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV ?= .venv
PYTHON := $(VENV)/bin/python
RUFF := $(VENV)/bin/ruff
DB_NAME ?= appdb
export VENV

ARGS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=
STACK_ARGS ?=
LOADTEST_ARGS ?=
# Only the load-test options that were given are passed; the tool has its own defaults.
LOADTEST_FLAGS := $(if $(USERS),--users=$(USERS)) $(if $(DURATION),--duration=$(DURATION)) \
                  $(if $(TARGET),--target=$(TARGET))

.PHONY: help venv services db nginx run test lint format stack loadtest bench clean

help: ## Show this help
	@echo "Usage: make TARGET [VARIABLE=value ...]"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Variables: ARGS (run), PYTEST_ARGS (test), USERS DURATION TARGET LOADTEST_ARGS (loadtest),"
	@echo "           BENCH_ARGS (bench), STACK_ARGS (stack), VENV (default .venv), DB_NAME (default appdb)"

# --- preparation --------------------------------------------------------------------------

venv: ## Create the virtual environment and install the project (when setup.cfg/pyproject.toml changed)
	@bash scripts/ensure-python.sh

services: ## Make sure Redis (127.0.0.1:6379) and MariaDB (127.0.0.1:3306) answer; start or install them
	@bash scripts/ensure-services.sh

db: ## Services, then create the database and apply schema.sql
	@bash scripts/ensure-services.sh --db $(DB_NAME)

nginx: ## Make sure nginx is available (scripts/ensure-nginx.sh)
	@bash scripts/ensure-nginx.sh

# --- use ----------------------------------------------------------------------------------

run: venv db ## Serve the app on http://127.0.0.1:8888, one process per core (ARGS=...)
	$(PYTHON) server.py $(ARGS)

test: venv services nginx ## Run the whole test suite (PYTEST_ARGS=...), then ruff check
	$(PYTHON) -m pytest $(PYTEST_ARGS)
	$(RUFF) check .

lint: venv ## ruff check and ruff format --check
	$(RUFF) check .
	$(RUFF) format --check .

format: venv ## Apply ruff format and ruff's safe fixes
	$(RUFF) format .
	$(RUFF) check --fix .

stack: venv db nginx ## App processes behind nginx on http://127.0.0.1:8080 (STACK_ARGS=...)
	bash scripts/stack.sh $(STACK_ARGS)

loadtest: venv db ## Load test (USERS=, DURATION=, TARGET=, LOADTEST_ARGS=...)
	$(PYTHON) -m loadtest $(strip $(LOADTEST_FLAGS) $(LOADTEST_ARGS))

bench: venv db ## Benchmarks; writes docs/PERFORMANCE.md (BENCH_ARGS=...)
	$(PYTHON) -m bench $(BENCH_ARGS)

clean: ## Remove the virtual environment, caches, var/ and reports/
	rm -rf -- $(VENV) .pytest_cache .ruff_cache build dist var reports *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
