"""The core: the C shim, the ring, op records, the I/O manager and what selects it.

Nothing here imports a layer above it (files, sockets, ``lowlevel``,
integrations, tools). From the bottom up:

* ``shim.c``/``shim.h`` and ``_ffi_build.py``: the C that drives the rings,
  compiled by cffi into ``_uring``; ``abi.py``: the kernel's numbers.
* ``ring.py``: one io_uring instance (setup, probe, push, submit, reap), no Trio.
* ``ops.py``: the op record and its lifecycle; ``deadlines.py``: Trio
  deadlines as kernel timeouts.
* ``parking.py``: the one place that talks to Trio's scheduler (park a task,
  wake it, the abort callbacks).
* ``manager.py`` with ``polling.py``, ``native.py``, ``multishot.py``,
  ``statistics.py``: Trio's I/O-manager contract on the ring.
* ``args.py``, ``structs.py``, ``sockaddr.py``: argument checks and kernel
  structs shared by the primitives and ``lowlevel``; ``fileops.py``: the
  file and path ops the primitives and ``lowlevel`` both stand on.
* ``availability.py``, ``settings.py``, ``compat.py``, ``version.py``.
"""
