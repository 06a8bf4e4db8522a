"""`python -m pipeline <command> key=value ...` (the console script `nn-pipeline` is the same)."""

from pipeline.cli import main
from pipeline.process_exit import skip_final_gc

code = main(prog="python -m pipeline")
skip_final_gc()  # ~1 CPU s of garbage collection at shutdown skipped: process_exit.py
raise SystemExit(code)
