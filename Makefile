# The two commands of the README: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test test-long lint bench bench-self-test clean

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
	sh tests/debian_packages.sh awscli rclone chromium chromium-driver
	$(BIN)/python -m pytest -q tests

test-long: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -m long tests

lint: $(TEST_STAMP)
	$(BIN)/ruff check ring storage gateway tests bench
	$(BIN)/mypy

bench: $(TEST_STAMP)
	bench/run_vs_swift.sh

# The load generator's own ceiling against a trivial local server.
bench-self-test: $(TEST_STAMP)
	$(BIN)/python -m bench.loadgen --self-test

clean:
	rm -rf $(VENV)
