# Two commands on a fresh machine: `make run` and `make test`. Both create or reuse .venv.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The venv uses the Lambda runtime's Python, so `sam build` finds python3.12 in .venv/bin.
RUNTIME_PYTHON = $(shell devtools/find-python.sh)
export SAM_CLI_TELEMETRY := 0
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help run test lint build clean

help:
	@echo "make run    serve the real handler on http://127.0.0.1:3000 with local Genesys and Secrets Manager"
	@echo "make test   lint, type-check and run the whole test suite"
	@echo "make build  sam build (needs python3.12)"

$(STAMP): layers/dependencies/requirements.txt requirements-dev.txt
	@test -x $(PY) || { python=$(RUNTIME_PYTHON) && [ -n "$$python" ] && "$$python" -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check \
		-r layers/dependencies/requirements.txt -r requirements-dev.txt
	@touch $@

run: $(STAMP)
	$(PY) -m devtools.run_local

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: lint
	$(PY) -m pytest

build: $(STAMP)
	sam build

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
