"""`python -m bench`: the benchmark suite (bench/run.py)."""

from bench.run import main

main()
