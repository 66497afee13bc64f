"""Benchmarks: one command each, JSON lines out (see docs/benchmarks.md)."""
