# POPS developer commands. `make demo` and `make test` work from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
PORT ?= 8000

.PHONY: demo test lint format bench clean chromium

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is needed"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	@mkdir -p var
	@echo "Migrating var/pops.sqlite3 ..."
	@$(BIN)/pops migrate --no-input -v 0
	@PORT=$(PORT) $(BIN)/pops demo
	@echo
	@echo "Serving on http://127.0.0.1:$(PORT), with the task worker that sends emails (Ctrl-C stops both)"
	@$(BIN)/pops db_worker --no-reload -v 0 & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT; \
	  $(BIN)/pops runserver 127.0.0.1:$(PORT) --noreload

# Debian's chromium, for the browser tests (never a downloaded browser build).
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "Install Debian's chromium (sudo apt-get install chromium) for the browser tests"; fi; }

test: $(STAMP) chromium
	@mkdir -p var
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	@mkdir -p var bench/results
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
