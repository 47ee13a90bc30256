# Two commands for a newcomer: `make run` (service + local PostGIS + demo data) and `make test` (everything).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SWAGGER := app/static/vendor/swagger-ui/swagger-ui-bundle.js

.PHONY: run test lint unit integration assets postgis venv db-stop clean bench-import

run: venv assets postgis ## Serve the API on http://127.0.0.1:8000 (local database + demo data when unconfigured)
	$(BIN)/territory serve

test: venv assets postgis ## The whole suite against a fresh PostGIS database, then ruff + mypy
	$(BIN)/pytest
	$(MAKE) --no-print-directory lint

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check app geodata optimizer migrations tests bench
	$(BIN)/mypy

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
		echo "python3 -m venv failed: install the venv module (Debian: apt-get install python3-venv)"; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

assets: $(SWAGGER) ## Vendor Swagger UI from the npm registry (never a CDN at run time)

$(SWAGGER): frontend/package.json frontend/package-lock.json
	@command -v npm >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && apt-get install -y -qq npm >/dev/null; \
		else echo "npm is required to vendor front-end assets (Debian: apt-get install npm)"; exit 1; fi; }
	cd frontend && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p app/static/vendor/swagger-ui
	cp frontend/node_modules/swagger-ui-dist/{swagger-ui-bundle.js,swagger-ui.css,favicon-32x32.png,LICENSE} \
		app/static/vendor/swagger-ui/
	@touch $@

postgis: ## Install PostgreSQL + PostGIS OS packages when missing (or explain what to install)
	@if [ -z "$$DATABASE_URL" ]; then scripts/ensure-postgis.sh; fi

db-stop: venv ## Stop the project-local PostgreSQL cluster
	$(BIN)/territory db stop

bench-import: venv postgis ## Time the national ZCTA import (see docs/benchmarks.md)
	$(BIN)/python bench/import_national.py

clean:
	rm -rf $(VENV) frontend/node_modules app/static/vendor .pytest_cache .mypy_cache .ruff_cache
