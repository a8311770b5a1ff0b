"""Benchmarks for Consistency Studio (issue 6): speed, sample quality vs steps
(one draw, and paired over independent draw sets), editing quality, scaling.

Run `python -m benchmarks [--quick] [--device cpu|cuda] [--model ...] [--teacher ...] [--data ...]`;
`run(Options)` is the same from Python.
"""
