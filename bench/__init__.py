"""Benchmarks and figures: one command each (`python -m bench.NAME`), printing a table.

They read the shared datasets beside the project (../shared/datasets) and skip with a
message where those are absent; they are not tests and time nothing in CI.
"""
