"""Benchmark engines: stock Trio and trio_uring side by side, in one run.

Each module measures one workload on both backends and reports ratios;
``python -m trio_uring bench`` runs them all, and the scripts under the
repository's ``benchmarks/`` run them one at a time with every option.
They are part of the package so that an installed trio_uring can show
what it buys on the machine it is installed on.
"""
