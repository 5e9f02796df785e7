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

# Genesys' SDK, only for the benchmark's comparison; never in the development venv or the layer.
BENCH_SDK := $(VENV)/bench-sdk
BENCH_SDK_STAMP := $(BENCH_SDK)/.installed
BUILD_DIR ?= .aws-sam/build

.PHONY: help run test lint build bench clean chromium

help:
	@echo "make run    serve the real handler on http://127.0.0.1:3000 with local Genesys and Secrets Manager,"
	@echo "            and the widget demo on http://127.0.0.1:3080/demo/"
	@echo "make test   lint, type-check and run the whole test suite (installs Debian's chromium if missing)"
	@echo "make build  sam build, then precompile it (needs python3.12; ARCH=x86_64 for an x86_64 build)"
	@echo "make bench  cold start, warm overhead, upstream calls, size, throughput -> BENCHMARKS.md"

$(STAMP): layers/dependencies/requirements.txt layers/tracing/requirements.txt layers/signature/requirements.txt \
		requirements-dev.txt
	@test -x $(PY) || { python=$(RUNTIME_PYTHON) && [ -n "$$python" ] && "$$python" -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check \
		-r layers/dependencies/requirements.txt -r layers/tracing/requirements.txt \
		-r layers/signature/requirements.txt -r requirements-dev.txt
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

# Lambda's code directories are read-only, so modules not shipped as bytecode are compiled on every cold
# start. .pyc files are the same on arm64 and x86_64; unchecked-hash ones stay valid after zip and unzip.
build: $(STAMP)
	sam build --build-dir $(BUILD_DIR) $(if $(ARCH),--parameter-overrides Architecture=$(ARCH))
	$(PY) -m compileall -q -j 0 --invalidation-mode unchecked-hash \
		$(BUILD_DIR)/GuestTokenFunction $(BUILD_DIR)/DependenciesLayer/python $(BUILD_DIR)/TracingLayer/python \
		$(BUILD_DIR)/SignatureLayer/python

$(BENCH_SDK_STAMP): bench/sdk-requirements.txt $(STAMP)
	rm -rf $(BENCH_SDK)
	$(PY) -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
		--target $(BENCH_SDK) -r bench/sdk-requirements.txt
	@touch $@

# wrk (the load tool) comes from Debian's packages when missing.
bench: $(LAMBDA_RUNTIME_STAMP) $(BENCH_SDK_STAMP)
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
