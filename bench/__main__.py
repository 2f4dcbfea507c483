"""`python -m bench`: see bench/run.py and BENCHMARKS.md."""

from bench.run import main

raise SystemExit(main())
