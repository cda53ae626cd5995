# The two commands of the README: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test test-long lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(STAMP)

run: $(STAMP)
	$(BIN)/coffre up --config conf/local.toml

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q tests

test-long: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -m long tests

lint: $(TEST_STAMP)
	$(BIN)/ruff check ring storage gateway tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV)
