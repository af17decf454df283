# `make run`: set up and start the whole portal on embedded defaults (SQLite, filesystem broker).
# `make test`: set up and run every test.  `make lint`: ruff, ruff format --check, mypy.
# Dependencies come from requirements.lock (exact versions); `make lock` writes it again.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test setup lint lock screenshots

# The exact versions (and their hashes) of requirements.lock, then Kodo itself without resolving
# again; `pip check` fails when pyproject.toml asks for something the lock lacks (run `make lock`).
$(BIN)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes \
		-r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m pip check
	touch $@

# After changing the version ranges in pyproject.toml: pin the newest versions they allow.
lock:
	test -x $(BIN)/pip-compile || { test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check pip-tools; }
	$(BIN)/pip-compile --quiet --extra dev --generate-hashes --allow-unsafe --strip-extras \
		--output-file requirements.lock pyproject.toml

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
	$(DEV_ENV) KODO_PORT=$(PORT) KODO_BASE_URL=http://127.0.0.1:$(PORT) $(BIN)/honcho -f Procfile start

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The README's pictures (docs/screenshots/*.png), taken by the browser tests that reach those pages
# (tests/e2e/conftest.py `screenshot`); only with KODO_SCREENSHOTS_DIR set do they write anything.
SCREENSHOT_TESTS := tests/e2e/test_screenshots.py \
	tests/e2e/test_configuration_form.py::test_the_custom_cloud_of_the_demo_file_keeps_the_default \
	tests/e2e/test_office365_manual.py::test_import_then_synchronize_users \
	tests/e2e/test_restore_manual.py \
	tests/e2e/test_self_service.py

screenshots: $(BIN)/.installed
	KODO_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots KODO_VAR_DIR=var/test-screenshots \
		$(BIN)/python -m pytest -q $(SCREENSHOT_TESTS)

# DEBUG=1 lets mypy's Django plugin load the settings without keys.
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=1 $(BIN)/mypy
