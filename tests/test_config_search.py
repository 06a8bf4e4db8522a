"""The search/evaluate config sections: defaults are valid, bad specs name the key and value."""

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from pipeline.config.search import EvaluateConfig, GateConfig, ParamSpec, SearchConfig, parse_space

CONF = Path(__file__).resolve().parents[1] / "conf" / "search"


def test_empty_sections_are_valid_with_documented_defaults():
    s, e = SearchConfig(), EvaluateConfig()
    assert (s.n_trials, s.workers, s.storage, s.objective) == (20, 1, None, "dev_error")
    assert (s.sampler.name, s.pruner.name, s.space) == ("tpe", "median", "default")
    assert (e.retrain_on, e.alias, e.force) == ("train", "champion", False)


def test_sections_are_frozen_and_forbid_unknown_keys():
    with pytest.raises(ValidationError, match="n_trial"):
        SearchConfig(n_trial=3)
    with pytest.raises(ValidationError):
        SearchConfig().n_trials = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    "field, value",
    [("n_trials", 0), ("workers", 0), ("objective", "test_error"), ("pruner", {"name": "asha"})],
)
def test_bad_search_values_are_rejected(field, value):
    with pytest.raises(ValidationError, match=field):
        SearchConfig(**{field: value})


def test_retrain_on_accepts_only_train_or_train_plus_dev():
    assert EvaluateConfig(retrain_on="train+dev").retrain_on == "train+dev"
    with pytest.raises(ValidationError, match="retrain_on"):
        EvaluateConfig(retrain_on="test")


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"type": "float", "low": 1.0, "high": 0.1}, "low must be < high, got low=1.0, high=0.1"),
        ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "log scale needs low > 0, got low=0.0"),
        ({"type": "categorical"}, "categorical needs a non-empty choices list"),
        ({"type": "categorical", "choices": []}, "categorical needs a non-empty choices list"),
        ({"type": "float", "low": 0.1}, "needs low and high"),
        ({"type": "int", "low": 1.5, "high": 4}, "int needs integer low/high"),
        ({"type": "uniform", "low": 0, "high": 1}, "type"),
    ],
)
def test_bad_param_specs_name_the_key_and_the_values(spec, message):
    with pytest.raises(ValueError) as info:
        parse_space({"regularization.l2": spec}, source="conf/search/bad.yaml")
    text = str(info.value)
    assert text.startswith("conf/search/bad.yaml: regularization.l2")
    assert message in text
    assert "\n" not in text


def test_space_keys_must_be_dotted():
    with pytest.raises(ValueError, match="'l2' must be a dotted config key"):
        parse_space({"l2": {"type": "float", "low": 0.1, "high": 1.0}})


@pytest.mark.parametrize("name", ["default", "wide"])
def test_committed_spaces_parse(name):
    space = parse_space(yaml.safe_load((CONF / f"{name}.yaml").read_text()))
    assert space["regularization.l2"] == ParamSpec(type="float", low=1e-4, high=10.0, log=True)
    assert space["model.init"].choices == ("he", "xavier", "random")


def test_gate_direction_follows_the_metric():
    assert GateConfig(metric="dev_error", threshold=0.1).passes(0.1)
    assert not GateConfig(metric="dev_error", threshold=0.1).passes(0.11)
    assert GateConfig(metric="dev_accuracy", threshold=0.9).passes(0.95)
    assert not GateConfig(metric="dev_accuracy", threshold=0.9).passes(0.85)
    assert GateConfig(threshold=None).passes(1.0)


@pytest.mark.parametrize("spec, message", [
    ({"type": "uniform", "low": 0, "high": 1},
     "type must be one of ['float', 'int', 'categorical'], got 'uniform'"),
    ({"type": "float", "low": 0.1, "high": 1.0, "step": 0}, "step must be > 0, got 0.0"),
    ({"type": "float", "low": 0.1, "high": float("inf")}, "high must be finite, got inf"),
    ({"type": "float", "low": 0.1, "high": 1.0, "lo": 2}, "unknown key lo; valid keys of regularization.l2: "
                                                          "choices, high, log, low, step, type; "
                                                          "did you mean low?"),
])
def test_space_errors_use_the_config_translator(spec, message):
    # one translator of pydantic errors for the config, the search space and the lessons
    with pytest.raises(ValueError) as info:
        parse_space({"regularization.l2": spec}, source="s.yaml")
    assert str(info.value) == f"s.yaml: regularization.l2: {message}"
