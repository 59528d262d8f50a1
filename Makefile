# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The default closed loop: us-3site (real 2022 data, one week), joint MPC on HiGHS, noisy
# forecasts. Each run writes a new folder under runs/ (named by the time), never over an old one.
RUN_DIR = runs/us-3site-mpc-$(shell date -u +%Y%m%dT%H%M%SZ)

run: $(STAMP)
	$(BIN)/aidc validate --all
	$(BIN)/aidc run us-3site --controller mpc --forecast noisy --solver highs --seed 1 --out $(RUN_DIR)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info
