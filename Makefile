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

# make bench: every bench/*.py that declares `BENCH = "name"` runs with
# `--json bench/out/<script>.json $(BENCH_ARGS_<script>)`, then bench/report.py writes
# bench/RESULTS.md from the result files in bench/out (removed first, so every row comes from
# this run; other files there, such as cached fixtures, are kept). Sizes and runs
# go in the variables, e.g. `make bench BENCH_ARGS_ingest="--runs 1 --sizes 4096"`.
BENCH_OUT := bench/out
BENCH_SCRIPTS = $(shell grep -l '^BENCH = ' bench/*.py)
BENCH_ARGS_ingest ?= --runs 3 --profile
BENCH_ARGS_parser_abuse ?= --reference

define run_bench
echo "== $(1) $(BENCH_ARGS_$(basename $(notdir $(1))))"; started=$$(date +%s); \
$(BIN)/python $(1) --json $(BENCH_OUT)/$(basename $(notdir $(1))).json \
  $(BENCH_ARGS_$(basename $(notdir $(1)))) || failed="$$failed $(1)"; \
echo "== $(1): $$(( $$(date +%s) - started )) s";
endef

bench: $(VENV)/.installed-dev
	scripts/ensure-test-services
	@scripts/ensure-bench-services || \
	  echo "make bench: going on without it; its rows in bench/RESULTS.md say so" >&2
	mkdir -p $(BENCH_OUT) && rm -f $(BENCH_OUT)/*.json  # benches may keep fixtures there
	@failed=""; began=$$(date +%s); \
	$(foreach script,$(BENCH_SCRIPTS),$(call run_bench,$(script))) \
	echo "== all benches: $$(( $$(date +%s) - began )) s"; \
	$(BIN)/python bench/report.py $(BENCH_OUT) --output bench/RESULTS.md || failed="$$failed report"; \
	if [ -n "$$failed" ]; then echo "make bench: failed or missing:$$failed" >&2; exit 1; fi

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
