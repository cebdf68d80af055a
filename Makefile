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

# The stamps make reinstalling cheap: they are rebuilt only when the package metadata or a
# compiled module (cds_service/compiled.py, built by setup.py with mypyc) changes, or when
# B12_COMPILE changes (B12_COMPILE=0: those modules as plain Python, for quick iterations).
# The install compiles the modules into extensions beside their sources; the old ones go
# first, so that Python never imports an extension older than its source.
export B12_COMPILE ?= 1
INSTALLED      := $(VENV)/.installed-compile$(B12_COMPILE)
INSTALLED_TEST := $(VENV)/.installed-test-compile$(B12_COMPILE)
BUILD_INPUTS   := setup.cfg pyproject.toml setup.py cds_service/compiled.py \
	$(wildcard cds_service/fhir/*.py)
REMOVE_BUILD   := find cds_service -name '*.so' -delete; rm -f ./*__mypyc.*.so $(VENV)/.installed*

$(INSTALLED): $(BIN)/python $(BUILD_INPUTS)
	$(REMOVE_BUILD)
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# One build for both: the test extras install the package as `make run` does.
$(INSTALLED_TEST): $(BIN)/python $(BUILD_INPUTS)
	$(REMOVE_BUILD)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(INSTALLED)

run: $(INSTALLED)
	mkdir -p var
	CDS_PROFILE=development $(BIN)/cds-service serve --host $(HOST) --port $(PORT)

test: $(INSTALLED_TEST)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(INSTALLED_TEST)
	$(BIN)/python -m flake8 cds_service hooks tests bench
	$(BIN)/python -m isort --check-only cds_service hooks tests bench
	$(BIN)/python -m black --check -q -l 100 cds_service hooks tests bench
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) var build *.egg-info
	find cds_service -name '*.so' -delete; rm -f ./*__mypyc.*.so

# Figures for this machine (docs/benchmarks.md): the service under gunicorn against a bare
# Flask floor, the scaling series and the fallback; installs wrk with apt-get when missing.
bench: $(INSTALLED)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# The soak by hand (CI runs 10 s of it): make soak SOAK_SECONDS=600
# Fault mode (PostgreSQL stopped and restarted, a worker killed): make soak SOAK_FAULTS=1
SOAK_SECONDS ?= 300
SOAK_FAULTS ?= 0
soak: $(INSTALLED)
	$(BIN)/python -m bench.soak --seconds $(SOAK_SECONDS) $(if $(filter 1,$(SOAK_FAULTS)),--faults)

# Rewrite fixtures/scenarios/ from tests/scenarios/definitions.py (the tests run it with --check).
scenarios: $(INSTALLED)
	$(BIN)/python -m tests.scenarios.build

# Rewrite the generated tables of docs/ and the settings of .env.example from the code (the
# tests fail when they are stale).
docs: $(INSTALLED)
	$(BIN)/python -m tests.docs.rulebook
	$(BIN)/python -m tests.docs.configuration

# Rewrite docs/home.png (the README's picture of the home page) with the browser tests.
screenshot: $(INSTALLED_TEST)
	UPDATE_DOCS_SCREENSHOT=1 $(BIN)/python -m pytest -q tests/browser -k folic_acid
