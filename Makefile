# Two commands on a fresh machine: `make demo` and `make test`. Each creates the virtual environment
# and installs from uv.lock on first use (needs only Python 3.11+ and make).

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .uv/bin/uv
VENV := .venv
SYNCED := $(VENV)/.synced-$(UV_VERSION)

.PHONY: install lint test test-fast demo bench format messages clean

$(UV):
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "kamwatch needs Python 3.11+")'
	$(PYTHON) -m venv .uv
	.uv/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

$(SYNCED): uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(SYNCED)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The whole suite, in as many processes as the machine has cores (one shared PostgreSQL, a template each).
test: lint
	$(VENV)/bin/pytest -n auto

# The pure tests alone (no database, no process), in seconds.
test-fast: install
	$(VENV)/bin/pytest tests/unit

demo: install
	$(VENV)/bin/kamwatch demo

bench: install
	$(VENV)/bin/python bench/ingest.py

# New strings marked for translation into the French catalogue (then translate them in kamwatch.po).
messages: install
	$(VENV)/bin/pybabel extract -F schemas/locales/babel.cfg -k translate:2 -k translate_plural:2,3 --no-location --sort-output \
		-o .messages.pot schemas ingestion health_engine alerts services
	$(VENV)/bin/pybabel update -i .messages.pot -d schemas/locales -D kamwatch -l fr --no-fuzzy-matching --ignore-obsolete --ignore-pot-creation-date
	rm -f .messages.pot

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf .uv $(VENV) .pytest_cache .mypy_cache .ruff_cache
