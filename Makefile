# The README names these targets; `make help` lists them.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PORT ?= 8000
REDIS_PORT ?= 6390

.PHONY: help install install-dev run test lint format evaluate bench bench-pipeline bench-scale clean loadtest

help:
	@echo "make run       install, migrate, seed demo data if empty, start web + Celery + Redis"
	@echo "make test      install dev requirements, ruff, then the pytest suite"
	@echo "make evaluate  accuracy on the four MovieLens 100k protocols (ARGS=--quick)"
	@echo "make bench     speed and memory of neighbour computation, against implicit (ARGS=--quick)"
	@echo "make bench-pipeline  recompute time with 1 and 2 workers; rating-to-panel freshness"
	@echo "make bench-scale  import, recompute, rating stream, reads at 1M/10M on SQLite and PostgreSQL (ARGS=--sizes 25M)"
	@echo "make loadtest  the JSON API under wrk and hey: recommendations vs the trivial endpoint (ARGS=--reuse-model)"
	@echo "make format    ruff format and fix"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

# axe-core for the browser accessibility test (tests/browser/test_accessibility.py), at the
# version package-lock.json pins. Without npm the test skips and says why.
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund --ignore-scripts && touch $@; \
	else echo "npm not found: the axe-core accessibility check will skip"; fi

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev node_modules/.installed

# DEBUG is on for `make run` (a developer's machine); production sets its own env.
run: export DEBUG ?= 1
# migrate and seed_demo run before the services start: they are pointed at the Redis the
# services will use (the private one on REDIS_PORT unless REDIS_URL is set), not the default.
run: export REDIS_URL ?= redis://127.0.0.1:$(REDIS_PORT)/0
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --if-empty
	@echo ""
	@echo "  Recsite: http://127.0.0.1:$(PORT)/   (admin: http://127.0.0.1:$(PORT)/admin/)"
	@echo "  Logins made by seed_demo: demo / demo, and admin / admin for staff."
	@echo "  Ctrl-C stops everything."
	@echo ""
ifdef REDIS_URL
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" WEB_PORT=$(PORT) $(VENV)/bin/honcho start web worker beat
else
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" WEB_PORT=$(PORT) REDIS_PORT=$(REDIS_PORT) \
		REDIS_URL=redis://127.0.0.1:$(REDIS_PORT)/0 $(VENV)/bin/honcho start
endif

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(VENV)/bin/pytest

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

evaluate: install-dev
	$(PY) -m recommendations.engine.evaluate $(ARGS)

# `make bench ARGS=--quick` runs MovieLens 100k and 1M only; the full suite takes ~25 min.
bench: install-dev
	$(PY) -m recommendations.engine.bench $(ARGS)

bench-pipeline: install-dev
	$(PY) bench/pipeline.py recompute
	$(PY) bench/pipeline.py freshness
	$(PY) bench/pipeline.py update
	$(PY) bench/pipeline.py drift

# Resumable: results saved per (size, database, step) in bench/out/scale.json; ARGS=--force redoes them.
bench-scale: install-dev
	$(PY) bench/scale.py $(ARGS)

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache node_modules

# --- loadtest: gunicorn on loopback, 10k users / 5k items, wrk at 16 connections (bench/loadtest.py)
loadtest: install-dev
	$(PY) bench/loadtest.py $(ARGS)
# --- end loadtest
