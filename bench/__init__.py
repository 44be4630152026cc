"""Benchmarks: `python -m bench` lists them, `python -m bench NAME [--quick]` runs one.

Each benchmark module defines ``DESCRIPTION`` and ``run(quick: bool, say) -> Result``: it measures
its figure *and* a baseline in the same run (these machines are noisy; compare ratios), prints
progress through ``say``, and the harness ends with one JSON line.
"""
