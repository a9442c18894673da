# The two commands a newcomer needs:
#   make demo   - install, start the embedded broker, the worker and sample traffic; watch decisions
#   make test   - install everything the tests need, then lint, type-check and run the whole suite
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: demo test install install-dev tools lint typecheck schemas bench

install:
	$(PIP) install -q -e .

install-dev:
	$(PIP) install -q -e '.[dev]'

tools:
	bash deploy/ci-tools.sh

demo: install
	$(PYTHON) -m workers.cli demo

lint:
	$(PYTHON) -m ruff check schemas workers tests bench
	$(PYTHON) -m ruff format --check schemas workers tests bench

typecheck:
	$(PYTHON) -m mypy

schemas:
	$(PYTHON) -m schemas.generate

test: install-dev tools lint typecheck
	$(PYTHON) -m schemas.generate --check
	$(PYTHON) -m pytest -p no:cacheprovider

bench: install
	$(PYTHON) bench/replay_bench.py
	$(PYTHON) bench/worker_bench.py
