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
# The browser tests drive this Chromium; Playwright's own browser download does not work offline.
export CHROMIUM ?= /usr/bin/chromium

.PHONY: help run test lint build clean chromium

help:
	@echo "make run    serve the real handler on http://127.0.0.1:3000 with local Genesys and Secrets Manager,"
	@echo "            and the widget demo on http://127.0.0.1:3080/demo/"
	@echo "make test   lint, type-check and run the whole test suite (installs Debian's chromium if missing)"
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

# Debian's Chromium, installed only when missing (as root, or through sudo).
chromium: $(CHROMIUM)
$(CHROMIUM):
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo -E) \
		apt-get install -y -qq --no-install-recommends chromium fonts-liberation

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

test: lint $(LAMBDA_RUNTIME_STAMP) $(CHECKOV_STAMP) $(CHROMIUM)
	$(PY) -m pytest

build: $(STAMP)
	sam build $(if $(ARCH),--parameter-overrides Architecture=$(ARCH))

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
