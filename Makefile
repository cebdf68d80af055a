# Two commands on a fresh machine: `make run` and `make test`. Each builds its own .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: run test lint bench soak clean scenarios screenshot docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The stamps make reinstalling cheap: they are rebuilt only when the package metadata changes.
$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	mkdir -p var
	CDS_PROFILE=development $(BIN)/cds-service serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/python -m flake8 cds_service hooks tests bench
	$(BIN)/python -m isort --check-only cds_service hooks tests bench
	$(BIN)/python -m black --check -q -l 100 cds_service hooks tests bench
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) var build *.egg-info

# Figures for this machine (docs/benchmarks.md): the service under gunicorn against a bare
# Flask floor, the scaling series and the fallback; installs wrk with apt-get when missing.
bench: $(VENV)/.installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# The soak by hand (CI runs 10 s of it): make soak SOAK_SECONDS=600
# Fault mode (PostgreSQL stopped and restarted, a worker killed): make soak SOAK_FAULTS=1
SOAK_SECONDS ?= 300
SOAK_FAULTS ?= 0
soak: $(VENV)/.installed
	$(BIN)/python -m bench.soak --seconds $(SOAK_SECONDS) $(if $(filter 1,$(SOAK_FAULTS)),--faults)

# Rewrite fixtures/scenarios/ from tests/scenarios/definitions.py (the tests run it with --check).
scenarios: $(VENV)/.installed
	$(BIN)/python -m tests.scenarios.build

# Rewrite the generated tables of docs/ and the settings of .env.example from the code (the
# tests fail when they are stale).
docs: $(VENV)/.installed
	$(BIN)/python -m tests.docs.rulebook
	$(BIN)/python -m tests.docs.configuration

# Rewrite docs/home.png (the README's picture of the home page) with the browser tests.
screenshot: $(VENV)/.installed-test
	UPDATE_DOCS_SCREENSHOT=1 $(BIN)/python -m pytest -q tests/browser -k folic_acid
