"""Benchmarks: `python -m bench` runs the suite (bench/run.py); each script also runs alone."""
