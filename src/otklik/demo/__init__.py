"""A seeded, reproducible demo online shop: catalog, customers, Segment events, offline CSVs.

Used to fill a fresh install with believable data, by the tests, and by the benchmarks. The
generator is in `otklik.demo.generator`; `catalog`, `people` and `offline` hold its parts.
"""
