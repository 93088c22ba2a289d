# Two commands matter: `make run` (the example app on the embedded default) and `make test`.
# Both work on a fresh machine: they create .venv, install, and fetch the npm client.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JS_STAMP := tests/js/node_modules/.installed
FRONTEND_STAMP := example_project/frontend/node_modules/.installed
PYTEST_ARGS ?=

.PHONY: run test lint pytest bench js venv system-deps clean soundness

run: $(STAMP) $(FRONTEND_STAMP)
	$(BIN)/python example_project/manage.py reactive_dev

test: lint pytest

venv: $(STAMP)

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing django-reactivity with [embedded,dev]"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[embedded,dev]"
	touch $@

js: $(JS_STAMP) $(FRONTEND_STAMP)

$(FRONTEND_STAMP): example_project/frontend/package.json example_project/frontend/package-lock.json
	@command -v npm >/dev/null || { echo "npm is required: apt-get install nodejs npm"; exit 1; }
	@echo "==> installing the Convex browser bundle for the example (example_project/frontend)"
	npm ci --prefix example_project/frontend --no-audit --no-fund --loglevel=error
	touch $@

$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	@command -v node >/dev/null || { echo "Node.js 20+ is required: apt-get install nodejs"; exit 1; }
	@echo "==> installing the official npm client (tests/js)"
	npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
	touch $@

lint: $(STAMP)
	@echo "==> ruff"
	$(BIN)/ruff check reactive tests bench example_project
	@echo "==> mypy --strict reactive"
	$(BIN)/mypy reactive
	@echo "==> import-linter (layers)"
	$(BIN)/lint-imports
	@echo "==> mkdocs build --strict"
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser).
system-deps:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "==> installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "The browser tests need Chromium: sudo apt-get install chromium"; exit 1; fi; }

pytest: system-deps $(STAMP) $(JS_STAMP) $(FRONTEND_STAMP)
	@echo "==> pytest (the library)"
	$(BIN)/pytest $(PYTEST_ARGS)
	@echo "==> pytest (the example project's own tests)"
	$(BIN)/pytest example_project --ds=example_project.settings $(PYTEST_ARGS)

# The read-set soundness properties with many more examples than `make test` (500 each).
SOUNDNESS_EXAMPLES ?= 5000
soundness: $(STAMP)
	REACTIVE_SOUNDNESS_EXAMPLES=$(SOUNDNESS_EXAMPLES) $(BIN)/pytest -q -s \
	  tests/capture/test_readset_soundness.py tests/capture/test_readset_soundness_shapes.py

bench: $(STAMP) $(JS_STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) tests/js/node_modules .pytest_cache .mypy_cache .ruff_cache
