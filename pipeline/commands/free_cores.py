"""How many worker processes a command uses when the user does not say (`experiment`'s
`workers=`): one per core that is free now, at least one, at most one per job.

The rule: `workers = clamp(cores - floor(load), 1, min(cores, jobs))`, where `cores` are the
cores this process may run on (`os.sched_getaffinity`: a container's or taskset's share, not
the machine's) and `load` is the 1-minute load average. Why the floor: a load under 1 on a
core means it idles most of the time (on this 2-core machine a command that just ended leaves
0.5-1.0 for a minute), and a worker too many costs little (`experiment ... workers=2` measured
no slower than one worker: benchmarks/README.md, "Workers"), while a worker too few leaves a
core idle for the whole lesson. Why not more workers than cores: each worker trains on one BLAS
thread (pipeline/threads.py), so a third worker on two cores only takes turns.
"""

from __future__ import annotations

import math
import os


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not available: take the cores as free
        return 0.0


def choose_workers(jobs: int, cores: int | None = None,
                   load: float | None = None) -> tuple[int, str]:
    """(count, why) by the rule of the module doc; `cores`/`load` default to this machine's,
    now. `why` is what the command prints."""
    cores = usable_cores() if cores is None else cores
    load = load_average() if load is None else load
    free = cores - math.floor(max(load, 0.0))
    count = max(1, min(free, cores, jobs))
    return count, (f"chosen from {cores} core(s) at load {load:.2f}; workers=N sets it")
