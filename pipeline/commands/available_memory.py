"""The memory a training may use on this machine, read here (the command line reads the
system; `pipeline.memory_needed.check_memory` takes the number), and `prepare_in_memory`, the
data preparation + memory check every command that trains runs before it creates a run."""

from __future__ import annotations

import os
from pathlib import Path

# cgroup v2, then v1: a container's limit and usage (the kernel's OOM killer acts on these,
# whatever /proc/meminfo says about the host)
CGROUP_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                 "/sys/fs/cgroup/memory/memory.usage_in_bytes"))


def _meminfo_available() -> int | None:
    """MemAvailable of /proc/meminfo (Linux), else free physical pages (other Unix)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024          # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _cgroup_headroom() -> int | None:
    for limit_file, usage_file in CGROUP_FILES:
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit != "max" and int(limit) < 1 << 60:     # v1 writes "no limit" as ~2^63
            return max(int(limit) - usage, 0)
        return None
    return None


def available_memory() -> int | None:
    """Bytes a new allocation can get: the smaller of MemAvailable and the cgroup's headroom;
    None when neither can be read (the check is then skipped)."""
    known = [n for n in (_meminfo_available(), _cgroup_headroom()) if n is not None]
    return min(known) if known else None


def prepare_in_memory(cfg, free: int | None = None):
    """`stages.prepare(cfg)`, then the check that training it fits in memory: a ValueError of
    one line (exit 2), before any run, when the data alone is too large to make or read (numpy's
    MemoryError names the allocation) or when the network to train on it is. `free`: the
    `available_memory()` the train command read and will pass to `stages.train`, which chooses
    the batch size of a null training.batch_size from it: the check is then of that batch (None:
    read here, and the batch is the config's)."""
    from pipeline import stages
    from pipeline.batch_choice import size_text
    from pipeline.memory_needed import check_memory

    available = available_memory() if free is None else free
    try:
        prepared = stages.prepare(cfg)
    except MemoryError as exc:
        dc = cfg.data
        key = f"data.path={dc.path}" if dc.name == "table" else f"data.params={dict(dc.params)}"
        free = "" if available is None else f", {size_text(available)} available"
        raise ValueError(f"{key}: the data set {dc.name!r} does not fit in memory ({exc}"
                         f"{free}); use fewer rows") from None
    check_memory(cfg, prepared, available, stages.batch_choice(cfg, prepared, free))
    return prepared
