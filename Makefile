# Two commands: `make report` and `make test`. Only Python 3.11+, pip and make are needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: report test test-fast lint catalogs install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Stamp files re-run the install when the package metadata changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

report: $(VENV)/.installed
	$(BIN)/evaluator demo --out reports

# Test files run in TEST_WORKERS processes (pytest-xdist; a file's tests stay in one process, so its module
# fixtures are built once). TEST_WORKERS=0 runs them in this process, in order. A crashed worker is not
# replaced: with --dist loadfile, xdist 3.8 re-queues the crashed worker's file and then waits forever
# (pytest-xdist #784, #1323), so a crash ends the run at once, named in its summary, instead of hanging CI.
TEST_WORKERS ?= 2

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --max-worker-restart=0

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "not slow"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports --config pyproject.toml   # the layers of docs/architecture.md
	$(BIN)/ruff format --check evaluator tests

# Re-extract the words of the reports and merge them into the Danish, Swedish and Finnish catalogs
# (evaluator/locale/<lang>/LC_MESSAGES/evaluator.po); new messages arrive empty for a translator.
catalogs: $(VENV)/.installed-dev
	$(BIN)/pybabel -q extract -F evaluator/locale/babel.cfg --no-location --sort-output --no-wrap -c TRANSLATORS: \
		--project evaluator --msgid-bugs-address "" -o evaluator/locale/evaluator.pot .
	for lang in da sv fi; do \
		if [ -f evaluator/locale/$$lang/LC_MESSAGES/evaluator.po ]; then \
			$(BIN)/pybabel -q update --no-wrap --no-fuzzy-matching --ignore-obsolete -D evaluator \
				-i evaluator/locale/evaluator.pot -d evaluator/locale -l $$lang; \
		else \
			$(BIN)/pybabel -q init --no-wrap -D evaluator -i evaluator/locale/evaluator.pot -d evaluator/locale -l $$lang; \
		fi; \
	done

clean:
	rm -rf $(VENV) .pytest_cache && find reports -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
