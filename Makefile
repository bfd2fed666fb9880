# Two commands set everything up: `make run` starts the service, `make test` runs the tests.
# Both create .venv (with the project and its dependencies installed) on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run train test lint benchmark benchmark-web clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m bot

train: $(STAMP)
	$(BIN)/python -m mnist_engine train

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

benchmark: $(STAMP)
	$(BIN)/python scripts/benchmark_engine.py

benchmark-web: $(STAMP)
	$(BIN)/python scripts/benchmark_web.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
