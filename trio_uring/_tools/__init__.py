"""The tools behind ``python -m trio_uring``: ``info``, ``bench`` and ``stress``.

The top layer: nothing in the package imports it except ``__main__``.
"""
