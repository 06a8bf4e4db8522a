"""The run configuration: pydantic models of `conf/*.yaml`, merged with key=value overrides.

Layers, later wins: `conf/base.yaml` (committed) <- `conf/presets/<name>.yaml` <- every
`conf/local/*.yaml` (git-ignored, sorted by name) <- command-line `key=value` pairs, whose values
are parsed as YAML (so `model.hidden=[20,3]` and `regularization.l2=0.7` are typed) by the one
bounded loader, `safe_yaml.load_yaml` (no alias bombs, no silent duplicate keys).
Everything is validated once, here; errors are one line naming the key, the bound and the value.
The section models live in `sections.py` and `search.py`, their bounds in `constraints.py`;
this module holds the root model and loads and merges.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml
from pydantic import ValidationError, model_validator

from pipeline.config.constraints import Count, Section, explain_error
from pipeline.config.safe_yaml import MAX_BYTES, load_yaml
from pipeline.config.search import EvaluateConfig, SearchConfig
from pipeline.config.sections import (AugmentConfig, DataConfig, DiagnosisConfig, ModelConfig,
                                      RegularizationConfig, TrackingConfig, TrainingConfig)
from pipeline.input_files import read_text
from pipeline.nn import keep_per_layer
from pipeline.redact import redact


class Config(Section):
    """The whole resolved configuration of a run (frozen; copy with `with_overrides`)."""

    seed: Count = 0
    data: DataConfig = DataConfig()
    augment: AugmentConfig = AugmentConfig()
    model: ModelConfig = ModelConfig()
    regularization: RegularizationConfig = RegularizationConfig()
    training: TrainingConfig = TrainingConfig()
    diagnosis: DiagnosisConfig = DiagnosisConfig()
    tracking: TrackingConfig = TrackingConfig()
    search: SearchConfig = SearchConfig()
    evaluate: EvaluateConfig = EvaluateConfig()

    @model_validator(mode="after")
    def _keep_prob_matches_hidden_layers(self) -> "Config":
        kp = self.regularization.keep_prob
        try:  # the length rule is the network's; the message names the keys
            keep_per_layer(kp, len(self.model.hidden))
        except ValueError:
            raise ValueError(f"regularization.keep_prob must have one value per hidden layer "
                             f"({len(self.model.hidden)} for model.hidden="
                             f"{list(self.model.hidden)}), got {list(kp)}") from None
        return self

    def with_overrides(self, dotted: Mapping[str, Any]) -> "Config":
        """A validated copy with `{"regularization.l2": 0.7, ...}` applied (typed values)."""
        data = self.model_dump(mode="python")
        for key, value in dotted.items():
            _set_dotted(data, key, value)
        return validate(data)

    def flat(self) -> dict[str, str]:
        """{"regularization.l2": "0.7", "model.hidden": "[20, 3]", ...}: MLflow params, with
        any password in a URL (search.storage, tracking.uri) masked."""
        return {k: redact(_param_text(v))
                for k, v in _flatten(self.model_dump(mode="json")).items()}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def validate(data: Mapping[str, Any]) -> Config:
    """Config from a plain mapping; a ValidationError becomes one ValueError line."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ValueError(explain_error(exc, Config)) from None


def config_from_yaml(text: str, source: str = "config") -> Config:
    """The logged `config.yaml` artifact back into a Config (reproduce reads it)."""
    return validate(_parse_yaml(text, source) or {})


def load_config(overrides: Sequence[str] = (), *, conf_dir: Path | str = Path("conf"),
                preset: str | None = None) -> Config:
    """base.yaml <- presets/<name>.yaml <- local/*.yaml <- key=value overrides, validated.

    A preset is a named config layer (a file), not an MLflow experiment: runs go to the MLflow
    experiment `tracking.experiment` whatever preset made their config."""
    conf_dir = Path(conf_dir)
    data = _read_yaml(conf_dir / "base.yaml")
    if preset:
        path = conf_dir / "presets" / f"{preset}.yaml"
        if not os.path.lexists(path):  # a directory or a symlink loop is named by _read_yaml
            known = sorted(p.stem for p in (conf_dir / "presets").glob("*.yaml"))
            raise ValueError(f"preset must be one of {known}, got {preset!r} "
                             f"(no file {path})")
        data = _merge(data, _read_yaml(path))
    for path in sorted((conf_dir / "local").glob("*.yaml")):
        data = _merge(data, _read_yaml(path))
    for item in overrides:
        key, value = parse_override(item)
        _set_dotted(data, key, value)
    return validate(data)


def parse_override(item: str) -> tuple[str, Any]:
    """`"model.hidden=[20,3]"` -> ("model.hidden", [20, 3]); the value is YAML."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip() or " " in key.strip():
        raise ValueError(f"override must look like key=value (e.g. regularization.l2=0.7), "
                         f"got {item!r}")
    return key.strip(), _parse_yaml(text, f"override {key.strip()}")


def _read_yaml(path: Path) -> dict[str, Any]:
    data = _parse_yaml(read_text(path, "config file", MAX_BYTES), str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping, got {type(data).__name__}")
    return data


def _parse_yaml(text: str, source: str) -> Any:
    return load_yaml(text, source)


def _merge(base: dict, top: Mapping) -> dict:
    """Deep merge: mappings merge key by key, everything else (lists too) is replaced."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _set_dotted(data: dict, key: str, value: Any) -> None:
    *parents, last = key.split(".")
    node = data
    for i, part in enumerate(parents):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            where = ".".join(parents[: i + 1])
            raise ValueError(f"{key}: {where} is a value ({child!r}), not a section")
        node = child
    node[last] = value


def _flatten(data: Mapping, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _param_text(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return "null" if value is None else str(value)
