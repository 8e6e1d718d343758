# Roundtable: the two commands.
#   make run   set up .venv, migrate, create demo accounts if the data directory is empty, serve on http://localhost:8080
#   make test  set up .venv with test extras and run the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= data
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

# Settings for `make run` (development mode: plain http and loopback federation allowed).
# Mail to acme@localhost / alice@localhost is taken on localhost:2525 (set ROUNDTABLE_SMTP_LISTEN= to switch it off).
ROUNDTABLE_SMTP_LISTEN ?= localhost:2525
RUN_ENV := ROUNDTABLE_DEV=1 ROUNDTABLE_DOMAIN=localhost:8080 ROUNDTABLE_LISTEN=localhost:8080 ROUNDTABLE_DATA=$(DATA) \
	ROUNDTABLE_SMTP_LISTEN=$(ROUNDTABLE_SMTP_LISTEN)

.PHONY: run test install install-test bench clean screenshots

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Roundtable needs Python 3.11 or newer ($(PYTHON) is older)"; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || ./.ci/deps
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test,bench]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
# axe-core (accessibility checks run inside Chromium by tests/e2e/test_web_browser.py), from npm
AXE := .cache/npm/node_modules/axe-core/axe.min.js
$(AXE):
	@command -v npm >/dev/null || ./.ci/deps
	npm install --silent --no-audit --no-fund --prefix .cache/npm axe-core@4.10

# masto.js (the library Elk and Phanpy are built on), driving the client API in tests/e2e/test_clients.py
MASTO := .cache/npm/node_modules/masto/package.json
$(MASTO):
	@command -v npm >/dev/null || ./.ci/deps
	npm install --silent --no-audit --no-fund --prefix .cache/npm masto@7

install-test: $(VENV)/.installed-test $(AXE) $(MASTO)

run: install
	$(RUN_ENV) $(BIN)/roundtable migrate
	$(RUN_ENV) $(BIN)/roundtable demo
	$(RUN_ENV) exec $(BIN)/roundtable serve

# Three workers, a file each at a time (a file's hub processes and fixtures stay on one worker):
# most tests wait on sockets, so this halves the time even on two cores. PYTEST_ARGS= runs serially.
PYTEST_ARGS ?= -n 3 --dist loadfile
test: install-test
	@./.ci/deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The README's screenshots (not part of `make test`): a throw-away hub photographed in Chromium.
screenshots: install-test
	@./.ci/deps
	$(BIN)/python docs/screenshots.py

bench: install-test
	@command -v wrk >/dev/null || { command -v apt-get >/dev/null && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; } || { echo "bench needs wrk (apt-get install wrk)"; exit 1; }
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
