"""Benchmarks with their peers (``python -m simulator bench NAME``)."""
