"""Benchmarks against peer implementations, run by ``python -m simulator bench NAME``."""
