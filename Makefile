# Flowsite: `make run` to start everything locally, `make test` to run the suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: run test lint format bench soak clean

$(PY):
	@command -v $(PYTHON) >/dev/null || { echo "Flowsite needs $(PYTHON) (with venv): install it, or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "Creating the venv failed: on Debian/Ubuntu install python3.11-venv"; exit 1; }

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade "pip>=25.1"
	$(PY) -m pip install --quiet --group dev
	rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap --when-served
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py serve

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/lint-imports --no-cache

# bench/api.py also measures Node-RED (npm install into ~/.cache/flowsite-bench, outside the
# project; left out with a message when npm cannot reach its registry) and a bare Django view
# in the same run. `make bench BENCH_API_ARGS=--quick` shortens its scenarios.
# Query() is measured on PostgreSQL (a database of its own, dropped after); empty: SQLite.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/flowsite_bench_query

bench: $(STAMP)
	$(PY) bench/engine.py --write
	$(PY) bench/api.py --write $(BENCH_API_ARGS)
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/query.py --write --replace
	$(PY) bench/memory.py --write

# Not part of `make test`: about 5 minutes on `manage.py serve`, results in BENCHMARKS.md.
soak: $(STAMP)
	$(PY) bench/soak.py soak --write

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) var
