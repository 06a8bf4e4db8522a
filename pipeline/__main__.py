"""`python -m pipeline <command> key=value ...` (the console script `nn-pipeline` is the same)."""

from pipeline.cli import main

raise SystemExit(main(prog="python -m pipeline"))
