# Two entry points (see README): `make demo` and `make test`. Everything else is a step of them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_CLUSTER = $(shell ls /etc/postgresql 2>/dev/null | head -n 1)
PIP = $(BIN)/python -m pip --disable-pip-version-check
PIP_INSTALL = $(PIP) install --progress-bar on -c requirements.lock

.PHONY: demo test install install-run lint typecheck pytest postgres buf clean

## Install what running needs (no test or lint tools, no npm), load demo data and start all
## four services on 127.0.0.1:50051.
demo: install-run
	$(BIN)/segments demo --serve

## Install everything and run every check: buf lint, ruff, mypy, pytest.
test: install postgres lint typecheck pytest

## What running needs: the package and its runtime dependencies.
install-run: $(VENV)/.installed-run

## Everything: the runtime, the Python test and lint tools, and buf (npm).
install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed-run: pyproject.toml setup.py requirements.lock $(wildcard protos/segments/v1/*.proto)
	@echo "==> [1/2] Python environment $(VENV): pip"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --progress-bar on --upgrade pip==25.3
	@echo "==> [2/2] Runtime packages and the package itself (generates the protobuf code)"
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed: $(VENV)/.installed-run
	@echo "==> Test and lint tools (pytest, ruff, mypy, hypothesis)"
	$(PIP_INSTALL) -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	@echo "==> buf (protobuf lint) from npm"
	npm ci --no-audit --no-fund --loglevel=error --progress=true
	touch $@

## Start the local PostgreSQL cluster when it is not running (tests need it).
postgres:
	@pg_isready -h 127.0.0.1 -p 5432 -q || pg_ctlcluster --skip-systemctl-redirect $(PG_CLUSTER) main start
	@for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -h 127.0.0.1 -p 5432 -q && exit 0; sleep 1; done; \
	  echo "PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1

lint: install
	$(BIN)/python tools/protodeps.py
	./node_modules/.bin/buf lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy libs services tests bench tools

pytest: install
	$(BIN)/pytest -q -n 2 $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) node_modules build segments var .mypy_cache .pytest_cache .ruff_cache
