# Thin wrappers. `make run` / `make test` create .venv and install the project first if needed;
# PostgreSQL and Redis are provisioned by devtools/stack/ (environment, local, or embedded).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.flotilla-installed
# The suite also tests the S3 artifact storage, so s3 is installed for development too.
EXTRAS ?= dev,embedded,s3
ARGS ?=

.PHONY: venv run test lint type fmt migrations-check manage up down logs

venv: $(STAMP)

# Re-installs only when pyproject.toml (or this file) changes, or the venv is new.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[$(EXTRAS)]'
	touch $@

run: venv
	$(PY) -m devtools.stack run

test: venv
	$(PY) -m devtools.stack test $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

type: venv
	$(VENV)/bin/mypy .

fmt: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrations-check: venv
	$(PY) -m devtools.stack manage makemigrations --check --dry-run

manage: venv
	$(PY) -m devtools.stack manage $(ARGS)

up:
	docker compose up -d --build

down:
	docker compose down

logs:
	docker compose logs -f
