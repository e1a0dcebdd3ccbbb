# Each target installs what it needs into .venv first. Python 3.11 or 3.12 is required
# (durable-rules does not import on 3.13); a C compiler and the Python headers build it.
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not (3,11) <= sys.version_info[:2] < (3,13))' 2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install clean screenshot serve bench bench-app bench-memory bench-records bench-screen

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python 3.11 or 3.12 is required (durable-rules does not import on 3.13)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/streamlit run app.py

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache

screenshot: $(STAMP)
	$(BIN)/python -m tests.browser_screenshot docs

# The CDS Hooks service, by default on 127.0.0.1:8080 in local development mode: CDS_INSECURE_DEV=1 (no token
# needed; the service refuses it on any address but loopback) and CORS for the public CDS Hooks sandbox.
# PORT=9000 for another port. With CDS_CLIENTS (and CDS_BASE_URL) set, tokens are required instead and
# SERVE_HOST may name another address. Every CDS_* variable of the environment is passed on (README).
SERVE_HOST ?= 127.0.0.1
CDS_INSECURE_DEV ?= $(if $(CDS_CLIENTS),0,1)
CDS_CORS_ORIGINS ?= https://sandbox.cds-hooks.org
serve: $(STAMP)
	CDS_BIND_HOST='$(SERVE_HOST)' CDS_INSECURE_DEV='$(CDS_INSECURE_DEV)' CDS_CORS_ORIGINS='$(CDS_CORS_ORIGINS)' \
		$(BIN)/uvicorn service.app:app --host '$(SERVE_HOST)' --port $(or $(PORT),8080)

# Benchmarks against CLIPS and the plain-Python floor, batch at scale; writes BENCHMARKS.md (~5 min).
bench: $(STAMP)
	$(BIN)/python -m benchmarks

# The app in Debian's Chromium against a one-field Streamlit form, and server start to interactive.
bench-app: $(STAMP)
	$(BIN)/python -m benchmarks.app_latency

# The CDS Hooks service on realistic synthetic records: typical and 4,000-Observation calls (~20 s).
bench-records: $(STAMP)
	$(BIN)/python -m benchmarks.service_records

# Resident memory after 1,000 and after 100,000 assessments in one process (~1 min).
bench-memory: $(STAMP)
	$(BIN)/python -m benchmarks.memory

# The cohort screen on generated FHIR Bulk Data exports of 10,000 and 100,000 patients vs batch --workers 2;
# worker memory at both sizes; 2 workers vs 1 at each size, judged at the largest on the median of 3 rounds (4 to 10 minutes on
# 2 cores). SIZES="10000 50000" ROUNDS=2 for a shorter run.
bench-screen: $(STAMP)
	$(BIN)/python -m benchmarks.screen $(if $(SIZES),--sizes $(SIZES),) $(if $(ROUNDS),--rounds $(ROUNDS),)
