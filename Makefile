# `make run`: set up and start the whole portal on embedded defaults (SQLite, filesystem broker).
# `make test`: set up and run every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test setup lint clean-var

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# The development keys (and DEBUG=1) in var/kodo.env apply only to commands given KODO_ENV_FILE.
DEV_ENV := KODO_ENV_FILE=var/kodo.env

var/kodo.env:
	$(BIN)/python -m kodo.devenv

setup: $(BIN)/.installed var/kodo.env
	$(DEV_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEV_ENV) $(BIN)/python manage.py create_demo

run: setup
	@echo
	@echo "Kodo is starting at http://127.0.0.1:$(PORT)/  (Ctrl-C stops everything)"
	@echo "  Demo logins are listed above. The demo tenant's KodoADSettings.json is written to var/."
	@echo
	$(DEV_ENV) KODO_PORT=$(PORT) $(BIN)/honcho -f Procfile start

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
