# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
# pytest-xdist workers for `make test` and `make flakes` (0: one process, no xdist).
TEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup)

.PHONY: run test flakes peers lint format clean bench sidebyside searchbench screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed-run

## Install, migrate and serve on http://$(HOST):$(PORT) (SQLite, in-memory layer, demo endpoint).
run: $(VENV)/.installed-run
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v 0
	@echo "Playground on http://$(HOST):$(PORT)/"
	$(BIN)/python -m chat.serve -b $(HOST) -p $(PORT) playground.asgi:application

## Install and run the whole suite (browser tests skip loudly without /usr/bin/chromium),
## in TEST_WORKERS processes (default 2).
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

## The flake hunt: the browser, integration and peer tests 3 times while every core is kept
## busy (stress-ng, else busy Pythons); prints each test that failed at least once.
## FLAKES_ARGS="--rounds 5 tests/browser/test_compare_browser.py" to aim it; see README "Tests".
flakes: $(VENV)/.installed-test
	$(BIN)/python -m tests.flakes --pytest="$(XDIST)" $(FLAKES_ARGS)

## The peer tests only: installs the real servers first (LiteLLM proxy, llama.cpp's
## llama-server with a small real model; the first time builds llama-server, ~7 min), then
## runs tests/peers, where a missing server fails instead of skipping. See README "Peer tests".
peers: $(VENV)/.installed-test
	$(PYTHON) tests/peers/install.py
	PLAYGROUND_PEER_TESTS=required $(BIN)/python -m pytest tests/peers $(PYTEST_ARGS)

## The relay benchmark (~3 min; BENCH_ARGS=--quick for a ~20 s smoke run). It runs on a
## throwaway database and prints a table; see README "Benchmark".
bench: $(VENV)/.installed-test
	$(BIN)/python -m tests.bench.relay $(BENCH_ARGS)

## The relay side by side with its peers (~7 min; SIDEBYSIDE_ARGS=--quick for a ~1 min run):
## the fake endpoint read directly, through nginx, through a LiteLLM proxy and through the app,
## interleaved at C = 1, 10, 50, 200, on a throwaway database. Installs nginx (apt-get, as root)
## and LiteLLM (PyPI, the peer tests' cache) the first time. SIDEBYSIDE_ARGS=--scale-out: the
## app as 2 daphne workers behind nginx on PostgreSQL + Redis (needs DATABASE_URL, REDIS_URL).
## Options: .venv/bin/python -m tests.bench.sidebyside --help
sidebyside: $(VENV)/.installed-test
	$(BIN)/python -m tests.bench.sidebyside $(SIDEBYSIDE_ARGS)

## The history search benchmark: seeds 10,000 conversations into a throwaway database
## (SQLite, or a new database on the server DATABASE_URL names) and prints median/p95 per
## query (~1 min). SEARCHBENCH_ARGS="--conversations 1000 --scan" to vary it.
searchbench: $(VENV)/.installed-run
	$(BIN)/python -m tests.bench.search $(SEARCHBENCH_ARGS)

## The README's screenshots (chat light and dark, comparison, phone) from the real app in
## Chromium (/usr/bin/chromium), on a throwaway database: tests/browser/screenshots/.
screenshots: $(VENV)/.installed-test
	$(BIN)/python -m tests.browser.screenshots

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
