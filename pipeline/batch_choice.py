"""The batch size `train` uses when `training.batch_size` is null: the full batch when its
buffers fit the memory budget, else the largest equal batches that do.

Pure: the command line reads the free memory (pipeline/commands/__init__.py `free_memory`)
and passes it in; without it (tests, the search's trials, a notebook) null stays full batch.
The budget is min(free / FREE_SHARE, BUFFER_CAP): a quarter of the free memory leaves room for
the data's own copies (features, [X.T; 1], the shuffled copy) and for the tracking edge, and
the cap because bigger batches do not buy speed (benchmarks/README.md, issue 20: on 600,000
rows of the default network, 1.66 us per row per epoch in batches of 100,000, 5.68 in one
full batch), so memory follows the data, not the data times the network's width. The small data of every lesson and of the default config
is far below it: those runs stay full batch, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.nn.layers import buffer_rows

BUFFER_CAP = 512 * 2**20
FREE_SHARE = 4


@dataclass(frozen=True)
class BatchChoice:
    rows: int | None     # samples per batch; None = the full batch
    m: int               # training samples
    full_bytes: int      # the buffers a full batch needs
    budget: int          # min(free // FREE_SHARE, BUFFER_CAP)
    free: int            # free memory the command line measured

    @property
    def param(self) -> str:
        """The run's `training.batch_size_chosen` param: the rows, or "full"."""
        return "full" if self.rows is None else str(self.rows)

    def describe(self) -> str:
        full, budget = size_text(self.full_bytes), size_text(self.budget)
        if self.rows is None:
            return (f"batch size: full batch ({self.m} rows, {full} of buffers within the "
                    f"budget of {budget})")
        return (f"batch size: {self.rows} rows chosen (training.batch_size is null and a full "
                f"batch of {self.m} rows needs {full} of buffers, over the budget of {budget} "
                f"= min(1/{FREE_SHARE} of {size_text(self.free)} free, "
                f"{size_text(BUFFER_CAP)}); set training.batch_size to choose)")


def size_text(n_bytes: float) -> str:
    """Bytes as people read them, in the largest unit under 1024 ("90.0 KiB", "1046.5 GiB"):
    every message about memory (here and pipeline/memory_needed.py) says sizes so."""
    for unit in ("B", "KiB", "MiB"):
        if n_bytes < 1024:
            return f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.1f} GiB"


def choose_batch_size(arch, m: int, dtype, keep, free_bytes: int) -> BatchChoice:
    """The full batch if its buffers (`layers.buffer_rows` per sample) fit the budget, else
    ceil(m / k) rows for the fewest batches k whose buffers fit (equal batches, none tiny)."""
    per_row = buffer_rows(arch, keep) * np.dtype(dtype).itemsize
    budget = min(int(free_bytes) // FREE_SHARE, BUFFER_CAP)
    full = per_row * m
    rows = None
    if full > budget:
        most = max(1, budget // per_row)
        batches = -(-m // most)
        rows = -(-m // batches)
    return BatchChoice(rows, m, full, budget, int(free_bytes))
