# airflow-provider-sei: every target works on a fresh machine that has only python3.
# The pinned sets live in constraints/: Airflow 3.3.2 (what we test on) and 3.1.8 (our minimum).

PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
VENV31 := .venv31
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: test test-31 lint format typecheck demo bench emulator dist constraints clean

# A venv with uv in it, then the pinned set plus the package (editable) with its test extras.
# Re-run when the project or its pins change. Bytecode is compiled at install: these machines
# set PYTHONDONTWRITEBYTECODE=1, and without .pyc files every `airflow` process (the demo's
# `airflow dags test`, the benchmarks' children) compiles Airflow again on import.
$(VENV)/.installed: pyproject.toml emulator/pyproject.toml constraints/airflow-3.3.txt Makefile
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(VENV)/bin/python \
		-c constraints/airflow-3.3.txt -e ".[test]" -e ./emulator --group dev
	touch $@

$(VENV31)/.installed: pyproject.toml emulator/pyproject.toml constraints/airflow-3.1.txt Makefile
	test -x $(VENV31)/bin/python || $(PYTHON) -m venv $(VENV31)
	$(VENV31)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(VENV31)/bin/uv pip install --quiet --compile-bytecode --python $(VENV31)/bin/python \
		-c constraints/airflow-3.1.txt -e ".[test]" -e ./emulator --group dev
	touch $@

## test: lint and typecheck, then the whole suite on the pinned Airflow 3.3.2
test: $(VENV)/.installed lint typecheck
	$(VENV)/bin/python -m pytest

## test-31: the whole suite on Airflow 3.1.8, the declared minimum
test-31: $(VENV31)/.installed
	$(VENV31)/bin/python -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

## demo: run every example DAG against the local emulator; files (csv, csv.gz, parquet) land in ./out/
demo: $(VENV)/.installed
	$(VENV)/bin/python scripts/demo.py

## bench: streaming, fan-out and parse-cost benchmarks; writes docs/benchmarks.md
bench: $(VENV)/.installed
	$(VENV)/bin/python bench/run.py

## dist: build the provider's and the emulator's wheels and sdists into dist/, then check them
dist: $(VENV)/.installed
	rm -rf dist
	$(VENV)/bin/uv build --quiet --out-dir dist .
	$(VENV)/bin/uv build --quiet --out-dir dist emulator
	$(VENV)/bin/twine check --strict dist/*

## emulator: serve the synthetic SEI org on http://127.0.0.1:8080 (Ctrl-C stops it)
emulator: $(VENV)/.installed
	$(VENV)/bin/python -m sei_emulator --port 8080

## constraints: re-pin from the current venvs (after a deliberate upgrade)
constraints: $(VENV)/.installed $(VENV31)/.installed
	$(VENV)/bin/uv pip freeze --python $(VENV)/bin/python \
		| grep -v -E '^(-e |airflow-provider-sei|harness-sei-emulator)' > constraints/airflow-3.3.txt
	$(VENV31)/bin/uv pip freeze --python $(VENV31)/bin/python \
		| grep -v -E '^(-e |airflow-provider-sei|harness-sei-emulator)' > constraints/airflow-3.1.txt

clean:
	rm -rf $(VENV) $(VENV31) .demo-airflow out dist .mypy_cache .ruff_cache .hypothesis
