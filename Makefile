# Two commands on a fresh machine: `make run` and `make test`. Both create or reuse .venv.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Stands in for /var/runtime (awslambdaric, boto3) when tests run the built package under aws-lambda-rie.
LAMBDA_RUNTIME := $(VENV)/lambda-runtime
LAMBDA_RUNTIME_STAMP := $(LAMBDA_RUNTIME)/.installed
# checkov (template scan) pins libraries that clash with aws-sam-cli's, so it gets a venv of its own.
CHECKOV := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV)/.installed
# The venv uses the Lambda runtime's Python, so `sam build` finds python3.12 in .venv/bin.
RUNTIME_PYTHON = $(shell devtools/find-python.sh)
export SAM_CLI_TELEMETRY := 0
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help run test lint build clean

help:
	@echo "make run    serve the real handler on http://127.0.0.1:3000 with local Genesys and Secrets Manager"
	@echo "make test   lint, type-check and run the whole test suite"
	@echo "make build  sam build (needs python3.12; ARCH=x86_64 for an x86_64 build)"

$(STAMP): layers/dependencies/requirements.txt requirements-dev.txt
	@test -x $(PY) || { python=$(RUNTIME_PYTHON) && [ -n "$$python" ] && "$$python" -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check \
		-r layers/dependencies/requirements.txt -r requirements-dev.txt
	@touch $@

$(LAMBDA_RUNTIME_STAMP): devtools/lambda-runtime-requirements.txt $(STAMP)
	rm -rf $(LAMBDA_RUNTIME)
	$(PY) -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
		--target $(LAMBDA_RUNTIME) -r devtools/lambda-runtime-requirements.txt
	@touch $@

$(CHECKOV_STAMP): devtools/checkov-requirements.txt $(STAMP)
	rm -rf $(CHECKOV)
	$(PY) -m venv $(CHECKOV)
	$(CHECKOV)/bin/python -m pip install --quiet --disable-pip-version-check -r devtools/checkov-requirements.txt
	@touch $@

run: $(STAMP)
	$(PY) -m devtools.run_local

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: lint $(LAMBDA_RUNTIME_STAMP) $(CHECKOV_STAMP)
	$(PY) -m pytest

build: $(STAMP)
	sam build $(if $(ARCH),--parameter-overrides Architecture=$(ARCH))

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
