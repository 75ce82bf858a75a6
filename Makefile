# Two entry points (see README): `make demo` and `make test`. Everything else is a step of them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_CLUSTER = $(shell ls /etc/postgresql 2>/dev/null | head -n 1)

.PHONY: demo test install lint typecheck pytest postgres buf clean

## Install everything, load demo data and start all four services on 127.0.0.1:50051.
demo: install
	$(BIN)/segments demo --serve

## Install everything and run every check: buf lint, ruff, mypy, pytest.
test: install postgres lint typecheck pytest

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml setup.py requirements.lock $(wildcard protos/segments/v1/*.proto)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
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
