# The two front-door commands (see README.md):
#   make demo   set everything up on a fresh machine and run `pathloop demo`
#   make test   set everything up and run every check CI runs
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: demo test setup setup-dev viewer viewer-test lint typecheck imports pytest bench clean

demo: setup
	$(BIN)/pathloop demo

test: setup-dev lint typecheck imports viewer-test pytest

setup: $(VENV)/.setup viewer
setup-dev: $(VENV)/.setup-dev viewer

$(VENV)/.setup: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (pathloop needs Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.setup-dev: $(VENV)/.setup
	$(PIP) install --quiet -e '.[dev]'
	touch $@

# The browser viewer (viewer/): npm ci from the lock file, then `npm run build` (the API
# client generated from viewer/openapi.json, tsc type check, vite build) into viewer/dist,
# which `pathloop serve` serves at /. Rebuilt when a source changes.
VIEWER_SOURCES := $(shell find viewer/src -type f ! -name schema.d.ts) viewer/index.html \
	viewer/openapi.json viewer/tsconfig.json viewer/vite.config.ts
viewer: viewer/dist/index.html

viewer/node_modules/.installed: viewer/package.json viewer/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm not found (the viewer needs Node >= 20.19)"; exit 1; }
	cd viewer && npm ci --no-audit --no-fund --loglevel=error
	touch $@

viewer/dist/index.html: viewer/node_modules/.installed $(VIEWER_SOURCES)
	cd viewer && npm run --silent build
	touch $@

lint:
	$(BIN)/ruff check .

# mypy cannot follow setuptools' editable-install finder, so it reads the packages through
# a folder of symlinks laid out as they are installed (pathloop/client -> client/, …), and
# the tests' support package (the shared test doubles) beside them.
typecheck:
	mkdir -p .typecheck/pathloop
	ln -sfn ../../client .typecheck/pathloop/client
	ln -sfn ../../server .typecheck/pathloop/server
	ln -sfn ../tests/support .typecheck/support
	cd .typecheck && ../$(BIN)/mypy --config-file ../pyproject.toml -p pathloop.client \
		-p pathloop.server -p support

imports:
	$(BIN)/lint-imports

viewer-test: viewer
	cd viewer && npm test --silent

pytest:
	$(BIN)/pytest

bench: setup-dev
	$(BIN)/python bench/tiling.py
	$(BIN)/python bench/ensemble.py
	$(BIN)/python bench/federation.py
	$(BIN)/python bench/tiles.py

clean:
	rm -rf $(VENV) .typecheck .pytest_cache .mypy_cache .ruff_cache pathloop-demo viewer/node_modules viewer/dist
