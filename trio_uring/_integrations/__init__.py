"""What selects the backend for code you don't own: ``run``/``install``, anyio, pytest.

``run.py`` (``trio_uring.run``, the process-wide switch and the fallback
policy), ``anyio.py`` (the ``"trio_uring"`` backend name), ``pytest_plugin.py``
and ``autoinstall.py`` (the start-up switch behind ``TRIO_URING_INSTALL``).
They stand on the core, files and sockets.
"""
