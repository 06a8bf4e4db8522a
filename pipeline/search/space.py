"""The search space: Optuna suggestions from `ParamSpec`s, turned into dotted config overrides.

Optuna stores categorical choices only as None/bool/int/float/str, so a choice such as a list
of hidden sizes (`[20, 3]`) is suggested as its JSON text (`"[20, 3]"`) and decoded back here;
`decode` is also what `evaluate` uses on the best trial's stored params.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import optuna

from pipeline.config.safe_yaml import MAX_BYTES, load_yaml
from pipeline.config.search import ParamSpec, parse_space
from pipeline.input_files import read_text

_PRIMITIVE = (bool, int, float, str, type(None))


def _encoded(spec: ParamSpec) -> bool:
    return any(not isinstance(c, _PRIMITIVE) for c in spec.choices or ())


def _choices(spec: ParamSpec) -> list[Any]:
    if _encoded(spec):
        return [json.dumps(c) for c in spec.choices]
    return list(spec.choices)


def suggest(trial: optuna.Trial, space: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """One point of the space as `{dotted key: typed value}`; Optuna params use the same keys."""
    values = {}
    for key, spec in space.items():
        if spec.type == "categorical":
            values[key] = trial.suggest_categorical(key, _choices(spec))
        elif spec.type == "int":
            values[key] = trial.suggest_int(key, int(spec.low), int(spec.high),
                                            step=int(spec.step or 1), log=spec.log)
        else:
            values[key] = trial.suggest_float(key, spec.low, spec.high, step=spec.step,
                                              log=spec.log)
    return decode(values, space)


def decode(params: Mapping[str, Any], space: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """Trial params (JSON text for list choices) -> config overrides (real lists)."""
    out = {}
    for key, value in params.items():
        spec = space.get(key)
        out[key] = json.loads(value) if spec is not None and _encoded(spec) else value
    return out


def load_space(name: str, conf_dir: Path) -> tuple[dict[str, ParamSpec], str]:
    """`conf/search/<name>.yaml` (or a path to a YAML file) -> (validated space, its YAML text)."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else conf_dir / "search" / f"{name}.yaml"
    if not os.path.lexists(path):
        known = sorted(p.stem for p in (conf_dir / "search").glob("*.yaml"))
        raise ValueError(f"search.space must name a file in {conf_dir / 'search'} {known} "
                         f"or a .yaml path, got {name!r} (no file {path})")
    text = read_text(path, "search space file", MAX_BYTES)  # a directory, loop, binary: named
    return parse_space(load_yaml(text, str(path)), source=str(path)), text


def check_space(cfg, space: Mapping[str, ParamSpec]) -> None:
    """Apply both ends of every range (and every choice) to the config once, before any trial,
    so an unknown key or a value the config refuses fails the command instead of every trial."""
    for key, spec in space.items():
        ends = list(spec.choices) if spec.type == "categorical" else [spec.low, spec.high]
        if spec.type == "int":
            ends = [int(v) for v in ends]
        for value in ends:
            try:
                cfg.with_overrides({key: value})
            except ValueError as exc:
                raise ValueError(f"search space {key}={value!r} is not a valid config: "
                                 f"{exc}") from None
