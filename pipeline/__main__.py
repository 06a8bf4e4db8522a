"""`python -m pipeline <command> key=value ...` (the console script `nn-pipeline` is the same)."""

import os

# One BLAS thread unless the user chose: the default networks' matrices are small, and on a
# machine whose cores are busy OpenBLAS's second thread spins for one. Measured (2 cores,
# load ~12): the default 2000-epoch training took 72 s with 2 threads and 2.9 s with one.
# A big network on an idle machine can gain from more: OPENBLAS_NUM_THREADS=2 python -m ...
for _key in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_key, "1")

from pipeline.cli import main  # noqa: E402 - numpy reads the variables above at import

raise SystemExit(main(prog="python -m pipeline"))
