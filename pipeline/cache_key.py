"""The run cache's key: a digest of everything that determines a training's numbers.

A training is deterministic given its config, its data, the code that computes it and the
arithmetic underneath (numpy, the BLAS library, its CPU kernel and thread count: a different
thread count can change the last digits, pipeline/threads.py). Two trainings with equal
`ingredients` give the same numbers bit for bit, so a finished one can stand for the other.

Left out on purpose, because they do not change a number: the `tracking` section (store,
experiment, run name, UI link, whether a model or figures are logged, the cache switch
itself) and the `search` and `evaluate` sections (read only by those commands, which are
never served from the cache). Generated data is determined by config + code, but a table's
bytes are not: every source is keyed by the digests of the arrays drawn (`Prepared.digests`).

Core module: hashlib, json and numpy only; the tracking edge stores and looks the key up.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Mapping

import numpy as np

from pipeline import threads
from pipeline.nn.model import source_digest

FORMAT = 2        # bump when what a cached result holds (pipeline/cached.py) changes
PACKAGE = Path(__file__).resolve().parent            # the `pipeline` directory
# The code whose bytes are hashed: what computes a training's numbers (data, split, standardize,
# augment, network, loop, metrics, diagnosis) and the config models that resolve the values
# it gets (defaults, "auto" cadences). Not tracking/, search/, commands/, plots/: they record or
# draw numbers, they do not compute them.
TRAIN_CODE = ("nn/*.py", "data/*.py", "config/*.py", "train.py", "train_types.py", "stages.py",
              "metrics.py", "diagnosis.py", "cached.py", "cache_key.py")
# an arm's extras are read off the result (execute), some through the trend helpers (flow)
LESSON_CODE = TRAIN_CODE + ("lessons/execute.py", "lessons/flow.py")
NOT_NUMERIC = ("tracking", "search", "evaluate")       # config sections left out (see above)
# lesson keys that only present, or that `plan` already folded into the arm's config
LESSON_PRESENTATION = ("name", "title", "base", "seeds", "arms", "grid", "claim", "figure",
                       "notes")


def code_digest(patterns: tuple[str, ...] = TRAIN_CODE, root: Path | None = None) -> str:
    """sha256 over (relative path, bytes) of the files matching `patterns` under `root` (the
    served model's digest, over other files). Read each time (a few ms): an edited file must
    change the key in a long-lived kernel."""
    return source_digest(PACKAGE if root is None else Path(root), patterns)


def numeric_config(cfg) -> dict:
    """The resolved config as plain data, without the sections that change no number."""
    return {k: v for k, v in cfg.model_dump(mode="json").items() if k not in NOT_NUMERIC}


def arithmetic(thread_count: int) -> dict:
    """What computes underneath: numpy, Python, the BLAS (library, version, CPU kernel) and
    the BLAS thread count the training runs with."""
    return {"numpy": np.__version__, "python": "%d.%d" % sys.version_info[:2],
            "blas": threads.library(), "blas.kernel": threads.kernel(),
            "blas.threads": int(thread_count)}


def ingredients(cfg, digests: Mapping[str, str], *, what: str, thread_count: int,
                code: tuple[str, ...] = TRAIN_CODE, extra: Mapping | None = None) -> dict:
    """Everything the key hashes, JSON-able (logged beside the result, so a miss can be
    explained by comparing two runs' `cache/key.json`). `what` names the kind of result
    ("train", "lesson_arm"): the same config gives different records for different kinds."""
    return {"format": FORMAT, "what": what, "config": numeric_config(cfg),
            "data": dict(sorted(digests.items())), "code": code_digest(code),
            **arithmetic(thread_count), "extra": dict(extra or {})}


def key_of(parts: Mapping) -> str:
    """sha256 of the canonical JSON of `ingredients` (sorted keys, no whitespace)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def lesson_extra(job) -> dict:
    """What a lesson adds to an arm's result beyond its config: the kind's extras (gradient
    flow, gradient check), the threshold, the corruption when it applies to THIS arm, and any
    option added later (everything not presentation is kept, so a new option misses, never
    wrongly hits)."""
    spec = job.lesson.model_dump(mode="json", exclude=set(LESSON_PRESENTATION))
    # options keyed by arm apply to one arm: keep only THIS arm's part, so two arms with the
    # same config but different planted bugs (gradient_checking) never share a key
    corrupt = spec.get("corrupt")
    if corrupt is not None and corrupt.get("arm") != job.arm:
        spec["corrupt"] = None
    bugs = spec.get("cost_bugs") or {}
    spec["cost_bugs"] = {job.arm: bugs[job.arm]} if job.arm in bugs else {}
    return spec
