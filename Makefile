# Two entry points, both self-contained on a fresh machine (Python 3.10+,
# gcc, make): `make demo` and `make test`. Both create and reuse .venv.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_DEPS := $(VENV)/.deps-stamp
STAMP_PKG := $(VENV)/.pkg-stamp
SOURCES := $(shell find src -name '*.py' -o -name 'py.typed') pyproject.toml setup.py

.PHONY: demo test lint typecheck unit conformance bench install clean

$(STAMP_DEPS): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# A real (non-editable) install: it compiles the C shim and places the
# start-up hook, exactly as `pip install trio-uring` would.
$(STAMP_PKG): $(STAMP_DEPS) $(SOURCES)
	$(PY) -m pip install --quiet --no-build-isolation --no-deps --force-reinstall .
	touch $@

install: $(STAMP_PKG)

demo: $(STAMP_PKG)
	$(PY) examples/demo.py

lint: $(STAMP_DEPS)
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m ruff format --check src tests benchmarks examples

typecheck: $(STAMP_PKG)
	$(PY) -m mypy

unit: $(STAMP_PKG)
	$(PY) -m pytest tests -q

# pytest-trio (here for the pytest plugin's tests) is no part of Trio's own
# suite: loaded into it, it fails three tests in test_testing_raisesgroup on
# both backends. Keep it out.
conformance: $(STAMP_PKG)
	PYTEST_ADDOPTS="-p no:trio" $(PY) tests/conformance/run_trio_suite.py
	$(PY) tests/conformance/run_anyio_suite.py

test: lint typecheck unit conformance

bench: $(STAMP_PKG)
	$(PY) benchmarks/bench_echo.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info src/trio_uring/_uring*.so src/trio_uring/_uring.c
