"""Files on native ops: ``open_file``, ``AsyncFile`` (binary and text) and ``Path``.

``trio.open_file`` and ``trio.Path`` with ``open``'s semantics, their reads
and writes ``IORING_OP_READ``/``WRITE`` on a trio_uring run and worker
threads anywhere else. Stands on the core (``_core.fileops``) only.
"""
