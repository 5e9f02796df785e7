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
# The venv uses the Lambda runtime's Python, so `sam build` finds python3.12 in .venv/bin. A venv made with
# another Python (a 3.13 found before 3.12 was installed), or left without pip (Debian's python3.12 without
# python3.12-venv, a Ctrl-C while it was made), is rebuilt rather than kept. PYTHON=/path names the interpreter.
PYTHON_VERSION := 3.12
VENV_PYTHON := $(shell [ -d $(VENV) ] && { $(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none; })
VENV_IS_STALE := $(filter-out $(PYTHON_VERSION),$(VENV_PYTHON))
export SAM_CLI_TELEMETRY := 0
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# The one setting for the function's and layers' instruction set: `make build` builds for it and writes it
# into the built template, which then has no Architecture parameter left for `sam deploy` to disagree with
# (nor SecretsManagerEndpointUrl, which is for `sam local` only).
ARCH ?= arm64

# Genesys' SDK, only for the benchmark's comparison; never in the development venv or the layer.
BENCH_SDK := $(VENV)/bench-sdk
BENCH_SDK_STAMP := $(BENCH_SDK)/.installed
BUILD_DIR ?= .aws-sam/build

.PHONY: help run test browser lint build bench clean FORCE

help:
	@echo "make run    serve the real handler on http://localhost:3000 with local Genesys and Secrets Manager,"
	@echo "            and the widget demo on http://localhost:3080/demo/"
	@echo "make test   lint, type-check and run the whole test suite (needs Chrome or Chromium, looked for first:"
	@echo "            CHROMIUM=/path or a command, one on PATH, or Debian's chromium, installed with apt-get)"
	@echo "make build  sam build for ARCH (arm64; ARCH=x86_64), pin it in the built template, precompile"
	@echo "make clean  remove .venv and every build (after changing Python, say)"
	@echo "make bench  cold start, warm overhead, upstream calls, size, throughput -> BENCHMARKS.md"

$(STAMP): layers/dependencies/requirements.txt layers/tracing/requirements.txt layers/signature/requirements.txt \
		requirements-dev.txt $(if $(VENV_IS_STALE),FORCE)
	@if [ -n "$(VENV_IS_STALE)" ]; then \
		echo "$(VENV) has $(if $(filter none,$(VENV_PYTHON)),no working Python,Python $(VENV_PYTHON)), not $(PYTHON_VERSION): rebuilding it"; \
		rm -rf $(VENV); \
	elif [ -d $(VENV) ] && ! $(PY) -m pip --version >/dev/null 2>&1; then \
		echo "$(VENV) has no pip (its creation failed or was interrupted): rebuilding it"; \
		rm -rf $(VENV); fi
	@test -x $(PY) || { python=$$(devtools/find-python.sh) || exit 1; "$$python" -m venv $(VENV) || { \
		rm -rf $(VENV); echo "Could not create $(VENV) (on Debian or Ubuntu: sudo apt-get install python3.12-venv)" >&2; \
		exit 1; }; }
	@echo "Installing the service's and the tests' packages into $(VENV) (a minute or two, once)..."
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check \
		-r layers/dependencies/requirements.txt -r layers/tracing/requirements.txt \
		-r layers/signature/requirements.txt -r requirements-dev.txt
	@touch $@

$(LAMBDA_RUNTIME_STAMP): devtools/lambda-runtime-requirements.txt $(STAMP)
	@echo "Installing the Lambda runtime's stand-in into $(LAMBDA_RUNTIME) (once)..."
	rm -rf $(LAMBDA_RUNTIME)
	$(PY) -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
		--target $(LAMBDA_RUNTIME) -r devtools/lambda-runtime-requirements.txt
	@touch $@

$(CHECKOV_STAMP): devtools/checkov-requirements.txt $(STAMP)
	@echo "Installing checkov into $(CHECKOV) (a minute, once)..."
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

# The browser tests drive the Chrome or Chromium that find-chromium.sh finds (quoted: macOS's path has spaces).
# It is looked for first, so a machine without one is told in seconds, not after minutes of installs.
browser:
	@devtools/find-chromium.sh >/dev/null

test: browser lint $(LAMBDA_RUNTIME_STAMP) $(CHECKOV_STAMP)
	@chromium=$$(devtools/find-chromium.sh) && echo "Browser tests drive $$chromium" && CHROMIUM="$$chromium" $(PY) -m pytest

# Lambda's code directories are read-only, so modules not shipped as bytecode are compiled on every cold
# start. .pyc files are the same on arm64 and x86_64; unchecked-hash ones stay valid after zip and unzip.
# Two of sam build's messages are left out, as docs/deploy.md says: "requirements.txt file not found" (the
# function's own folder has none: its dependencies are in the layers) and "Commands you can use next", whose
# `sam deploy --guided` would contradict the deployment's step 4.
build: $(STAMP)
	@case "$(ARCH)" in arm64|x86_64) ;; *) echo "ARCH must be arm64 or x86_64, not '$(ARCH)'" >&2; exit 1;; esac
	@echo "sam build --build-dir $(BUILD_DIR) --parameter-overrides Architecture=$(ARCH)"
	@set -o pipefail; sam build --build-dir $(BUILD_DIR) --parameter-overrides Architecture=$(ARCH) 2>&1 | awk \
		'/^requirements\.txt file not found/ {next} /^Commands you can use next/ {skip=1} !skip {print; fflush()} \
		skip && /^\[\*\] Deploy:/ {skip=0}'
	$(PY) -m devtools.pin_parameters $(BUILD_DIR)/template.yaml Architecture=$(ARCH) SecretsManagerEndpointUrl=
	$(PY) -m compileall -q -j 0 --invalidation-mode unchecked-hash \
		$(BUILD_DIR)/GuestTokenFunction $(BUILD_DIR)/DependenciesLayer/python $(BUILD_DIR)/TracingLayer/python \
		$(BUILD_DIR)/SignatureLayer/python

$(BENCH_SDK_STAMP): bench/sdk-requirements.txt $(STAMP)
	rm -rf $(BENCH_SDK)
	$(PY) -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
		--target $(BENCH_SDK) -r bench/sdk-requirements.txt
	@touch $@

# wrk (the load tool) comes from Debian's packages when missing; elsewhere the deployer installs it.
bench: $(LAMBDA_RUNTIME_STAMP) $(BENCH_SDK_STAMP)
	@command -v wrk >/dev/null || devtools/apt-install.sh "install wrk (brew install wrk, dnf install wrk, pacman -S wrk)" wrk
	$(PY) -m bench $(BENCH_ARGS)

FORCE:

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
