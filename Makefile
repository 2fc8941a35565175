# The two front-door commands (see README.md):
#   make demo   set everything up on a fresh machine and run `pathloop demo`
#   make test   set everything up and run every check CI runs
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: demo test setup setup-dev lint typecheck imports pytest bench clean

demo: setup
	$(BIN)/pathloop demo

test: setup-dev lint typecheck imports pytest

setup: $(VENV)/.setup
setup-dev: $(VENV)/.setup-dev

$(VENV)/.setup: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (pathloop needs Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.setup-dev: $(VENV)/.setup
	$(PIP) install --quiet -e '.[dev]'
	touch $@

lint:
	$(BIN)/ruff check .

# mypy cannot follow setuptools' editable-install finder, so it reads the packages through
# a folder of symlinks laid out as they are installed (pathloop/client -> client/, …).
typecheck:
	mkdir -p .typecheck/pathloop
	ln -sfn ../../client .typecheck/pathloop/client
	ln -sfn ../../server .typecheck/pathloop/server
	cd .typecheck && ../$(BIN)/mypy --config-file ../pyproject.toml -p pathloop.client -p pathloop.server

imports:
	$(BIN)/lint-imports

pytest:
	$(BIN)/pytest

bench: setup-dev
	$(BIN)/python bench/tiling.py
	$(BIN)/python bench/ensemble.py
	$(BIN)/python bench/federation.py

clean:
	rm -rf $(VENV) .typecheck .pytest_cache .mypy_cache .ruff_cache pathloop-demo
