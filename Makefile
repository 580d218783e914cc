# Every target sets itself up: a fresh machine needs nothing but Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup data test bench perf ui playground screenshots server lint clean

setup: $(STAMP)

# torch is pinned by constraints.txt to the release whose CPU wheel these machines use;
# see README.md ("Another PyTorch build") to pick a different one.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "nn-harness needs Python >= 3.11; set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	@touch $(STAMP)

test: setup
	$(BIN)/python -m pytest

data: setup
	$(BIN)/harness data fetch mnist

bench: data
	$(BIN)/harness bench
	$(BIN)/harness report

perf: data
	$(BIN)/harness perf --readme README.md

ui: setup
	$(BIN)/harness ui

playground: setup
	$(BIN)/harness playground

# The README's screenshots (docs/*.png), taken by the browser tests in headless Chromium.
screenshots: setup
	HARNESS_SCREENSHOTS=docs $(BIN)/python -m pytest -m browser -q

# A shared MLflow server on PostgreSQL (PostgreSQL's programs must be installed: apt-get install postgresql).
server: setup
	$(BIN)/harness server

lint: setup
	$(BIN)/ruff check harness tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
