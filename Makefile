# Two commands set up everything: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install serve test lint typecheck pytest clean

$(STAMP): pyproject.toml Makefile examples/interlink-slack/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Interlink needs Python >= 3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e examples/interlink-slack
	touch $(STAMP)

install: $(STAMP)

serve: install
	$(BIN)/interlink serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .

# mypy cannot follow setuptools' editable finder, so it reads a tree of links laid out as the package.
TYPECHECK_TREE := build/typecheck
typecheck: install
	rm -rf $(TYPECHECK_TREE) && mkdir -p $(TYPECHECK_TREE)/interlink
	for f in core/*; do ln -s "$(CURDIR)/$$f" $(TYPECHECK_TREE)/interlink/; done
	for d in api plugins manifests; do ln -s "$(CURDIR)/$$d" $(TYPECHECK_TREE)/interlink/$$d; done
	cd $(TYPECHECK_TREE) && "$(CURDIR)/$(BIN)/mypy" --config-file "$(CURDIR)/pyproject.toml" -p interlink

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
