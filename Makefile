# Developer entry points. `make` alone lists the targets.
#
# Variables (set on the command line, e.g. `make run ARGS='--processes=2 --debug'`):
#   VENV          virtual environment directory (default .venv)
#   ARGS          options for server.py                         (make run)
#   PYTEST_ARGS   options for pytest                            (make test)
#   BROWSER_ARGS  options for the browser tests' own pytest run (make test, make test-browser)
#   USERS, DURATION, TARGET, LOADTEST_ARGS       (make loadtest, make loadtest-ui)
#   BENCH_ARGS    options for the benchmark                     (make bench)
#   HOSTS         app hosts behind nginx, each in a network namespace (default 1)  (make stack)
#   REDIS         single (the Redis of --redis_url), cluster or sentinel (a private
#                 Redis Cluster / Sentinel group on free loopback ports)   (make stack)
#   STACK_ARGS    other options for scripts/stack.sh            (make stack)
#   DB_NAME       database created by `make db` (default appdb)
#   LOCK_ARGS     options for `uv pip compile`, e.g. --upgrade     (make lock)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV ?= .venv
PYTHON := $(VENV)/bin/python
RUFF := $(VENV)/bin/ruff
UV := $(VENV)/bin/uv
DB_NAME ?= appdb
export VENV

ARGS ?=
PYTEST_ARGS ?=
BROWSER_ARGS ?=
BENCH_ARGS ?=
STACK_ARGS ?=
HOSTS ?= 1
REDIS ?= single
LOADTEST_ARGS ?=
LOCK_ARGS ?=
# The lock files hold every platform's hashes and fit every Python the project supports
# (python_requires in setup.cfg), whatever machine runs `make lock`.
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --quiet \
              --custom-compile-command 'make lock'
USERS ?= 10
DURATION ?= 30
TARGET ?= http://127.0.0.1:8888
# Users start over about two seconds; sessions in progress get 20 s to finish at the end.
LOCUST := $(PYTHON) -m locust -f loadtest/locustfile.py --host=$(TARGET) --users=$(USERS) \
          --spawn-rate=$(shell echo $$(( ($(USERS) + 1) / 2 ))) --stop-timeout=20

.PHONY: help venv runtime-venv lock services db nginx chromium run test unit test-browser \
        screenshots lint format stack loadtest loadtest-ui bench clean

help: ## Show this help
	@echo "Usage: make TARGET [VARIABLE=value ...]"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Variables: ARGS (run), PYTEST_ARGS (test), USERS DURATION TARGET LOADTEST_ARGS (loadtest*),"
	@echo "           BENCH_ARGS (bench), HOSTS REDIS STACK_ARGS (stack), LOCK_ARGS (lock),"
	@echo "           VENV (default .venv), DB_NAME (default appdb)"

# --- preparation --------------------------------------------------------------------------

venv: ## Create .venv with the pinned dependencies of requirements-dev.txt (when it changed)
	@bash scripts/ensure-python.sh requirements-dev.txt

runtime-venv:
	@bash scripts/ensure-python.sh requirements.txt

lock: venv ## After a dependency change in setup.cfg: re-pin requirements*.txt with hashes (LOCK_ARGS=--upgrade)
	$(UV) pip compile setup.cfg --extra test --extra lint $(LOCK_FLAGS) $(LOCK_ARGS) \
	    -o requirements-dev.txt
	$(UV) pip compile setup.cfg -c requirements-dev.txt $(LOCK_FLAGS) $(LOCK_ARGS) \
	    -o requirements.txt
	@bash scripts/ensure-python.sh requirements-dev.txt

services: ## Make sure Redis (127.0.0.1:6379) and MariaDB (127.0.0.1:3306) answer; start or install them
	@bash scripts/ensure-services.sh

db: venv ## Services, then create the database and apply schema.sql
	@bash scripts/ensure-services.sh --db $(DB_NAME)

nginx: ## Make sure nginx is available (scripts/ensure-nginx.sh)
	@bash scripts/ensure-nginx.sh

chromium: ## Make sure Chromium and the emoji font are installed, for the browser tests
	@bash scripts/ensure-chromium.sh

# --- use ----------------------------------------------------------------------------------

run: runtime-venv db ## Serve the app on http://127.0.0.1:8888, one process per core (ARGS=...)
	$(PYTHON) server.py $(ARGS)

unit: venv ## The unit tests alone (tests/unit/: pure logic, no Redis, MariaDB or servers)
	$(PYTHON) -m pytest -q tests/unit

# The unit tests run first, before the services are even prepared, so their failures show
# within seconds; the main run then skips them unless PYTEST_ARGS picks tests itself.
# The browser tests (tests/browser/) are a pytest run of their own: Playwright's event
# loop and the asyncio tests cannot share one process.
test: venv unit services nginx chromium ## Unit tests, the whole suite (PYTEST_ARGS=...), the browser tests (BROWSER_ARGS=...), ruff check
	$(PYTHON) -m pytest $(if $(strip $(PYTEST_ARGS)),$(PYTEST_ARGS),--ignore=tests/unit)
	$(PYTHON) -m pytest tests/browser $(BROWSER_ARGS)
	$(RUFF) check .

test-browser: venv services nginx chromium ## Only the real-browser tests (BROWSER_ARGS=...)
	$(PYTHON) -m pytest tests/browser $(BROWSER_ARGS)

screenshots: venv services nginx chromium ## The browser tests, also writing the README's screenshots to docs/screenshots/
	BROWSER_SCREENSHOTS_DOCS=1 $(PYTHON) -m pytest tests/browser $(BROWSER_ARGS)

lint: venv ## ruff check, ruff format --check, and mypy --strict on sessions/
	$(RUFF) check .
	$(RUFF) format --check .
	$(PYTHON) -m mypy

format: venv ## Apply ruff format and ruff's safe fixes
	$(RUFF) format .
	$(RUFF) check --fix .

stack: venv db nginx ## The stack on http://127.0.0.1:8080 (HOSTS=N REDIS=single|cluster|sentinel STACK_ARGS=...)
	bash scripts/stack.sh --hosts=$(HOSTS) --redis=$(REDIS) $(STACK_ARGS)

loadtest: venv ## Headless Locust run with a live progress line (USERS= DURATION= TARGET= LOADTEST_ARGS=)
	$(LOCUST) --headless --run-time=$(DURATION)s --only-summary --html=reports/loadtest.html \
	    --sharing-json=reports/loadtest-sharing.json $(LOADTEST_ARGS)

loadtest-ui: venv ## Locust's web UI on http://127.0.0.1:8089, with a Session sharing tab
	$(LOCUST) --web-host=127.0.0.1 --sharing-json=reports/loadtest-sharing.json $(LOADTEST_ARGS)

bench: venv db ## Benchmarks; writes docs/PERFORMANCE.md (BENCH_ARGS=...)
	$(PYTHON) -m bench $(BENCH_ARGS)

clean: ## Remove the virtual environment, caches, var/ and reports/
	rm -rf -- $(VENV) .pytest_cache .ruff_cache build dist var reports *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
