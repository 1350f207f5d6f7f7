# Set-up and everyday commands. `make run` and `make test` do everything on a fresh machine.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

# A Python >= 3.12: $PYTHON, else python3.13/python3.12 on PATH, else pyenv's.
PYTHON_CANDIDATES := $(PYTHON) python3.13 python3.12 python3 \
	$(shell command -v pyenv >/dev/null 2>&1 && for v in 3.13 3.12; do p=$$(pyenv prefix $$(pyenv versions --bare 2>/dev/null | grep -E "^$$v(\.|$$)" | sort -V | tail -1) 2>/dev/null) && echo $$p/bin/python; done) \
	$(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python $(HOME)/.pyenv/versions/3.12*/bin/python)
FIND_PYTHON = for p in $(PYTHON_CANDIDATES); do \
	  if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then echo $$p; exit 0; fi; \
	done; exit 1

.PHONY: run test test-pg test-scale schemathesis setup setup-test lint format check-deploy clean

$(BIN)/python:
	@py=$$($(FIND_PYTHON)) || { echo "error: Python >= 3.12 not found. Install one, or point PYTHON=/path/to/python3.12 at it." >&2; exit 1; }; \
	echo "Using $$py ($$($$py --version))"; $$py -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

.env: | $(BIN)/python
	@echo "SECRET_KEY=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')" > .env
	@echo "Created .env with a new local SECRET_KEY."

# migrate also creates the database cache's table, where the rate limits count (createcachetable).
setup: $(VENV)/.installed .env
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py load_catalog
	$(BIN)/python manage.py collectstatic --no-input -v0

setup-test: $(VENV)/.installed-test .env

run: setup
	PORT=$(PORT) $(BIN)/python manage.py serve

test: setup-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The suite on PostgreSQL (DATABASE_URL=PG_TEST_URL): everything but the browser tests (`make test`
# runs those) and the few that read the SQLite file itself. The role needs CREATEDB: the test run
# creates and drops `test_<database>`. `sudo bash .ci/postgres` sets up the default one on Debian.
PG_TEST_URL ?= postgres://playground:playground@127.0.0.1:5432/playground
test-pg: setup-test
	DATABASE_URL='$(PG_TEST_URL)' $(BIN)/python -m pytest -m "not e2e and not sqlite" $(PYTEST_ARGS)

# Several hosts on this machine (tests/scale): PostgreSQL (set up by .ci/postgres, as root, unless
# PLAYGROUND_SCALE_DATABASE_URL names a cluster), moto's S3 server on 127.0.0.1 as the shared bucket,
# two web and two worker processes with their own empty data folders, and faults of both shared
# parts, also as a person in Chromium sees them. It stops and starts that PostgreSQL cluster
# (pg_ctlcluster): not on a database in use.
test-scale: setup-test
	PLAYGROUND_SCALE_TESTS=1 $(BIN)/python -m pytest tests/scale $(PYTEST_ARGS)

# Fuzz /api/v1 against its OpenAPI document with a live server on 127.0.0.1 (tests/fuzz/schemathesis.sh).
schemathesis: setup-test
	bash tests/fuzz/schemathesis.sh

lint: setup-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# `manage.py check --deploy` with the production environment documented in the README.
check-deploy: $(VENV)/.installed
	DEBUG=false PLAYGROUND_HTTPS=true ALLOWED_HOSTS=playground.example.com PLAYGROUND_TRUSTED_PROXIES=10.0.0.5 \
	SECRET_KEY=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))') \
	$(BIN)/python manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) var staticfiles
