# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pinned versions of every dependency (runtime and test extra): refreshed by `make lock`
LOCK := constraints.txt

.PHONY: run test lint bench clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml $(LOCK)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[test]'
	touch $(STAMP)

# Re-resolve pyproject.toml's version ranges in a throw-away venv and pin the result in
# constraints.txt (then `make test`, and regenerate any README number that moved).
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet '.[test]'
	{ sed -n '/^#/p' $(LOCK); .venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^aidc'; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .venv-lock build

# The default closed loop: us-3site (real 2022 data, one week), joint MPC on HiGHS, noisy
# forecasts. Each run writes a new folder under runs/ (named by the time), never over an old one.
RUN_DIR = runs/us-3site-mpc-$(shell date -u +%Y%m%dT%H%M%SZ)

run: $(STAMP)
	$(BIN)/aidc validate --all
	$(BIN)/aidc run us-3site --controller mpc --forecast noisy --solver highs --seed 1 --out $(RUN_DIR)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist loadfile

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .venv-lock build *.egg-info
