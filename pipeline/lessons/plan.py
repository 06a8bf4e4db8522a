"""From a Lesson to one validated Config per (arm, seed): the experiment is a loop over configs.

Layers, later wins: conf/base.yaml (+ conf/local) <- the lesson's `base` <- the command line's
key=value overrides <- the arm's overrides <- `seed`. The command line cannot undo what an arm
sets (that is the comparison): such an override is refused in one line naming the key and the
arms (`arm_conflicts`) rather than silently losing to the arm; it can change everything else
(epochs, data size, ...).
Every config is built here, before any run exists, so a bad override fails at the door.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from pipeline.config import load_config, parse_override
from pipeline.lessons.spec import Lesson

# The most seeds one lesson may run. The shipped lessons use 5-10 and their claims hold or fail
# on counts over those; 1,000 seeds of a 5-arm lesson are 5,000 trainings and child runs (hours
# at one worker), far past what a class waits for, while 1M seeds spent 4 minutes planning
# before the first run. Checked before any config is built, so it costs nothing.
MAX_SEEDS = 1000


@dataclass(frozen=True)
class Job:
    """One (arm, seed): everything a worker process needs, picklable."""
    lesson: Lesson
    arm: str
    seed: int
    cfg_yaml: str
    overrides: tuple[str, ...]        # `python -m pipeline train <these>` gives the same numbers


def dotted(items: Sequence[str]) -> dict[str, Any]:
    """["training.epochs=300", ...] -> {"training.epochs": 300, ...} (values are YAML)."""
    return dict(parse_override(item) for item in items)


def plan(lesson: Lesson, *, seeds: int | None = None, overrides: Sequence[str] = (),
         conf_dir: Path | str = Path("conf"), arms: Sequence[str] | None = None,
         first_seed: int = 0, stop=None) -> list[Job]:
    """Every (arm, seed) job, arm-major, each with its validated config. Seeds are
    first_seed .. first_seed + n - 1 (fresh seeds check a lesson tuned on seeds 0..n-1).
    `arms`: run only these (a notebook's quick look; the claim then needs its arms).
    `stop` (a `pipeline.stop.Stop` or None) is checked once per job: a config costs
    milliseconds, so a long plan still ends within one of them on SIGINT/SIGTERM."""
    n = lesson.seeds if seeds is None else seeds
    if not isinstance(first_seed, int) or isinstance(first_seed, bool) or first_seed < 0:
        raise ValueError(f"first_seed must be an integer >= 0, got {first_seed!r}")
    known = lesson.arm_names()
    for arm in arms or ():
        if arm not in known:
            raise ValueError(f"arms must be among {known}, got {arm!r}")
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_SEEDS:
        raise ValueError(f"seeds must be an integer in [1, {MAX_SEEDS}], got {n!r}")
    base = load_config(conf_dir=conf_dir)
    cli = dotted(overrides)
    arm_conflicts(lesson, cli)
    layers = [("base", lesson.base), ("command line", cli)]
    jobs = []
    for arm, arm_over in lesson.arm_overrides().items():
        if arms is not None and arm not in arms:
            continue
        cfg = base
        for where, layer in [*layers, (f"arms.{arm}", arm_over)]:
            try:
                cfg = cfg.with_overrides(layer)
            except ValueError as exc:
                raise ValueError(f"lesson {lesson.name}: {where}: {exc}") from None
        _check_kind(lesson, arm, cfg)
        for seed in range(first_seed, first_seed + n):
            if stop is not None:
                stop.check()
            seeded = cfg.with_overrides({"seed": seed})
            items = [*_items(lesson.base), *overrides, *_items(arm_over), f"seed={seed}"]
            jobs.append(Job(lesson, arm, seed, seeded.to_yaml(), tuple(items)))
    return jobs


def arm_conflicts(lesson: Lesson, cli: Mapping[str, Any]) -> None:
    """Refuse an override of a key some arm sets (or a section holding one, or a key inside
    one): the arm's value would win in that arm and the override apply only to the others,
    so the comparison would change without a word. Refused, not warned: a warning scrolls
    past the per-run lines and the verdict would still be printed as the lesson's."""
    arms = lesson.arm_overrides()
    for key in cli:
        setting = [(arm, k) for arm, over in arms.items() for k in over
                   if k == key or k.startswith(key + ".") or key.startswith(k + ".")]
        if setting:
            shown = ", ".join(f"{arm} ({k}={_text(arms[arm][k])})" for arm, k in setting)
            raise ValueError(f"override {key} cannot apply: lesson {lesson.name}'s arms set it, "
                             f"and they are the comparison: {shown}; drop the override, or copy "
                             f"the lesson file and change its arms")


def _check_kind(lesson: Lesson, arm: str, cfg) -> None:
    """What a kind needs of every arm's config, refused here rather than halfway through."""
    where = f"lesson {lesson.name}: arms.{arm}"
    if lesson.kind == "gradient_flow" and cfg.training.eval_every != 1:
        raise ValueError(f"{where}: kind gradient_flow needs training.eval_every=1 (the first "
                         f"evaluation is the gradient at the initial weights), got "
                         f"{cfg.training.eval_every}")
    c = lesson.corrupt
    if c is not None and c.arm == arm:
        blocks = [f"{p}{l}" for l in range(1, len(cfg.model.hidden) + 2) for p in "Wb"]
        if c.block not in blocks:
            raise ValueError(f"lesson {lesson.name}: corrupt.block must be one of {blocks}, "
                             f"got {c.block!r}")


def _items(layer: Mapping[str, Any]) -> list[str]:
    return [f"{k}={_text(v)}" for k, v in layer.items()]


def _text(value: Any) -> str:
    """A value as the YAML that parse_override reads back to the same thing."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))
