"""Native sockets: ``NativeSocket``, its ops, its listener's multishot accept, lean streams.

Trio's socket API, where a call that has to wait becomes an io_uring op
whose result wins over a cancel. Stands on the core only; the public face
is ``trio_uring.socket``.
"""
