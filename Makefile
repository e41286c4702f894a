# crmmail: `make run` starts the server on SQLite, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SMTP_PORT ?= 2525

.PHONY: run test lint typecheck pytest bench clean

$(BIN)/python:
	PYTHON=$(PYTHON) scripts/make-venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/crmmail init
	@$(BIN)/crmmail account show demo >/dev/null 2>&1 || $(BIN)/crmmail account create demo --name Demo
	$(BIN)/crmmail account show demo
	$(BIN)/crmmail serve --smtp-host 127.0.0.1 --smtp-port $(SMTP_PORT)

test: $(VENV)/.installed-dev
	scripts/ensure-test-services
	$(MAKE) --no-print-directory lint typecheck pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check crmmail tests bench
	$(BIN)/ruff format --check crmmail tests bench

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest

bench: $(VENV)/.installed-dev
	scripts/ensure-test-services
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/mailbox_import.py
	$(BIN)/python bench/parser_abuse.py --reference
	$(BIN)/python bench/memory.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
