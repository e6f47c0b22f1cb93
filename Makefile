# Two entry points, both self-contained on a fresh machine (Python 3.10+,
# gcc, make): `make demo` and `make test`. Both create and reuse .venv.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_DEPS := $(VENV)/.deps-stamp
STAMP_PKG := $(VENV)/.pkg-stamp
SOURCES := $(shell find trio_uring -name '*.py' -o -name '*.c' -o -name '*.h' -o -name 'py.typed') \
	pyproject.toml setup.py

.PHONY: demo test lint typecheck unit conformance asan bench soak install clean

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

# The main job: every benchmark on stock Trio and on trio_uring, side by
# side, at the default scale (a little over a minute of benchmarks; `make bench` for all).
demo: $(STAMP_PKG)
	$(VENV)/bin/trio-uring bench

lint: $(STAMP_DEPS)
	$(PY) -m ruff check trio_uring tests benchmarks examples
	$(PY) -m ruff format --check trio_uring tests benchmarks examples

typecheck: $(STAMP_PKG)
	$(PY) -m mypy

# Tests run against the installed package, never the source tree beside
# them: pytest runs from tests/ (a `python -m` in the root would put
# trio_uring/ itself first on sys.path), and tests/conftest.py refuses to
# run if trio_uring was imported from the tree anyway.
PYTEST := cd tests && ../$(VENV)/bin/python -m pytest

unit: $(STAMP_PKG)
	$(PYTEST) -q

# Three suites, each run on stock Trio and on io_uring and compared test by
# test (docs/conformance.md): Trio's own (twice: on the default data path
# and on the batched one), anyio's and trio-websocket's (the last two from
# their sdists, downloaded once into build/).
# pytest-trio (here for the pytest plugin's tests and trio-websocket's suite)
# is no part of Trio's own suite: loaded into it, it fails three tests in
# test_testing_raisesgroup on both backends. Keep it out of that one.
conformance: $(STAMP_PKG)
	PYTEST_ADDOPTS="-p no:trio" $(PY) tests/conformance/run_trio_suite.py
	PYTEST_ADDOPTS="-p no:trio" $(PY) tests/conformance/run_trio_suite.py --data-path batched
	$(PY) tests/conformance/run_anyio_suite.py
	$(PY) tests/conformance/run_websocket_suite.py

# The C shim built once more with AddressSanitizer, into build/asan (a copy
# of the sources, so the normal build is untouched), and the op, stress,
# pressure, native-socket, batched-path and ring-mode tests run on it. Python itself is
# not instrumented: libasan is preloaded and leak checking is off (CPython
# keeps memory until exit). The quarantine of freed blocks is kept small
# (4 MiB): ASan's default (256 MiB) makes RSS grow with every free, which the
# stress suite's flat-RSS check would rightly report; our C frees almost
# nothing, so little is lost.
ASAN_TESTS := tests/test_op_core.py tests/test_linked_timeouts.py tests/test_lowlevel.py \
	tests/test_stress.py tests/test_ring_pressure.py tests/test_batched.py \
	tests/test_socket_native.py tests/test_modes.py tests/test_early_submit.py tests/test_stream.py \
	tests/test_streamfast.py
asan: $(STAMP_DEPS)
	rm -rf build/asan && mkdir -p build/asan/src
	cp -r trio_uring setup.py pyproject.toml README.md build/asan/src/
	TRIO_URING_CFLAGS="-fsanitize=address -fno-omit-frame-pointer" \
		$(PY) -m pip install --quiet --no-build-isolation --no-deps --target build/asan/site build/asan/src
	LD_PRELOAD=$$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0:quarantine_size_mb=4 \
		PYTHONPATH=$(CURDIR)/build/asan/site $(PY) tests/asan_check.py
	LD_PRELOAD=$$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0:quarantine_size_mb=4 \
		PYTHONPATH=$(CURDIR)/build/asan/site $(PYTEST) -p no:cacheprovider -q $(ASAN_TESTS:tests/%=%)

test: lint typecheck unit asan conformance

# Every case at full size (several minutes). The console script, not
# `python -m`, so that the checkout's uncompiled tree is not imported.
bench: $(STAMP_PKG)
	$(VENV)/bin/trio-uring bench --full

# hypercorn on trio_uring for 10 minutes under well-behaved, rude and slow
# clients: RSS, fds and p99 per interval, and a verdict (exit 1 if it
# fails). Outside `make test`. SOAK_SECONDS=60 for a short run;
# SOAK_ARGS="--backend stock" for the same soak on stock Trio.
soak: $(STAMP_PKG)
	$(PY) benchmarks/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info trio_uring/_core/_uring*.so trio_uring/_core/_uring.c
