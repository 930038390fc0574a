# ScaleDeck: `make demo` runs it on a simulated GPU cluster; `make test` runs every test.
# Needs only Python 3.11+ and make; everything else is installed into .venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: demo test lint install install-test check-deploy bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-demo: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet .
	@touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet ".[test]"
	@touch $@ $(VENV)/.installed-demo

install: $(VENV)/.installed-demo

# The demo serves collected static files: hashed names, gzip copies, cached for a year.
demo: export SCALEDECK_STATIC_MANIFEST = 1
demo: $(VENV)/.installed-demo
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py demo_seed
	$(BIN)/python manage.py demo_run --port $(PORT)

test: $(VENV)/.installed-test
	$(BIN)/python scripts/run_tests.py

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check-deploy: $(VENV)/.installed-demo
	SCALEDECK_SECRET_KEY=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(60))') \
	DJANGO_SETTINGS_MODULE=config.settings_production $(BIN)/python manage.py check --deploy --fail-level WARNING

bench: $(VENV)/.installed-test
	$(BIN)/python bench/sync_kubernetes.py
	$(BIN)/python bench/pages.py
	$(BIN)/python bench/page_load.py

clean:
	rm -rf var .pytest_cache
