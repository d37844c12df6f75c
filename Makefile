# The two commands: `make run` (the gateway, with sandbox suppliers and an embedded store
# when nothing is configured) and `make test` (the whole suite against a real Redis).
# Both create .venv and install from pyproject.toml when it is missing or out of date.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench sandbox

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install -q --upgrade pip >/dev/null
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/gateway serve

test: $(STAMP)
	bash scripts/test.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

sandbox: $(STAMP)
	$(VENV)/bin/gateway sandbox

# The HTTP benches load the server with wrk (Debian package); installed here when missing
# and possible, else they fall back to a slower Python client (and say so).
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get install -y -qq wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null 2>&1)) \
	  || echo "wrk not installed: the HTTP benches use their Python client"; }
	$(VENV)/bin/python -m bench
