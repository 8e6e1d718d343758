"""Benchmarks: `make bench` (or `python -m bench`). See README, "Benchmarks"."""
