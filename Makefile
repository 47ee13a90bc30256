# Two commands for a newcomer: `make run` (service + local PostGIS + demo data) and `make test` (everything).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SWAGGER := app/static/vendor/swagger-ui/swagger-ui-bundle.js
MAPLIBRE := app/static/vendor/maplibre/maplibre-gl.js
NODE_MODULES := frontend/node_modules/.installed
# the shared Census data (never copied into the repo): $TERRITORY_DATA_DIR, else found by scripts/data-dir.sh
ifeq ($(TERRITORY_DATA_DIR),)
TERRITORY_DATA_DIR := $(shell scripts/data-dir.sh)
endif
ifneq ($(TERRITORY_DATA_DIR),)
export TERRITORY_DATA_DIR
endif

.PHONY: run test lint unit integration assets postgis chromium venv db-stop clean bench-import

run: venv assets postgis ## Serve the API on http://127.0.0.1:8000 (local database + demo data when unconfigured)
	$(BIN)/territory serve

test: venv assets postgis chromium ## The whole suite (map test in the OS Chromium included), then ruff + mypy
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

assets: $(SWAGGER) $(MAPLIBRE) ## Vendor Swagger UI and MapLibre GL JS from the npm registry (never a CDN at run time)

$(NODE_MODULES): frontend/package.json frontend/package-lock.json
	@command -v npm >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && apt-get install -y -qq npm >/dev/null; \
		else echo "npm is required to vendor front-end assets (Debian: apt-get install npm)"; exit 1; fi; }
	cd frontend && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

$(SWAGGER): $(NODE_MODULES)
	mkdir -p app/static/vendor/swagger-ui
	cp frontend/node_modules/swagger-ui-dist/{swagger-ui-bundle.js,swagger-ui.css,favicon-32x32.png,LICENSE} \
		app/static/vendor/swagger-ui/
	@touch $@

$(MAPLIBRE): $(NODE_MODULES)
	mkdir -p app/static/vendor/maplibre
	cp frontend/node_modules/maplibre-gl/dist/{maplibre-gl.js,maplibre-gl.css} app/static/vendor/maplibre/
	cp frontend/node_modules/maplibre-gl/LICENSE.txt app/static/vendor/maplibre/LICENSE.txt
	@touch $@

postgis: ## Install PostgreSQL + PostGIS OS packages when missing (or explain what to install)
	@if [ -z "$$DATABASE_URL" ]; then scripts/ensure-postgis.sh; fi

chromium: ## Install the OS Chromium for the map's browser test when missing (or explain what to install)
	@scripts/ensure-chromium.sh

db-stop: venv ## Stop the project-local PostgreSQL cluster
	$(BIN)/territory db stop

bench-import: venv postgis ## Time the national ZCTA import (see docs/benchmarks.md)
	$(BIN)/python bench/import_national.py

clean:
	rm -rf $(VENV) frontend/node_modules app/static/vendor .pytest_cache .mypy_cache .ruff_cache
