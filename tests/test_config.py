"""Config loading, layering, overrides and the one-line validation messages."""

import re
from pathlib import Path

import pytest

from pipeline.config import config_from_yaml, load_config, parse_override

CONF = Path(__file__).resolve().parents[1] / "conf"


def load(*overrides, **kw):
    return load_config(overrides, conf_dir=kw.pop("conf_dir", CONF), **kw)


def test_default_config_loads_with_the_documented_defaults():
    cfg = load()
    assert cfg.data.name == "noisy_diagonal"
    assert cfg.data.target == "auto"
    assert cfg.model.hidden == (80, 50, 30) and cfg.model.activation == "relu"
    assert cfg.model.init == "he"
    # unregularized and trained to the end: the default run overfits the noisy labels, so that
    # regularization.l2 / keep_prob / training.patience visibly change it
    assert cfg.regularization.l2 == 0 and cfg.regularization.keep_prob == 1.0
    assert cfg.training.patience is None


def test_overrides_are_parsed_as_yaml():
    cfg = load("model.hidden=[5,4,3]", "regularization.l2=0.7", "regularization.keep_prob=[0.5,0.8,1]",
               "training.batch_size=null", "data.params.n_samples=500")
    assert cfg.model.hidden == (5, 4, 3)
    assert cfg.regularization.l2 == 0.7
    assert cfg.regularization.keep_prob == (0.5, 0.8, 1.0)
    assert cfg.training.batch_size is None
    assert cfg.data.params == {"n_samples": 500}


# Every bound the core used to check again (TrainSettings, the optimizer, dropout, the network)
# is declared once in the config: this table is its contract, one exact line per bad value.
BAD_VALUES = [
    ("training.learning_rate=0", "training.learning_rate must be > 0, got 0.0"),
    ("training.learning_rate=-1", "training.learning_rate must be > 0, got -1.0"),
    ("training.learning_rate=.inf", "training.learning_rate must be finite, got inf"),
    ("training.learning_rate=.nan", "training.learning_rate must be finite, got nan"),
    ("training.epochs=0", "training.epochs must be >= 1, got 0"),
    ("training.epochs=true", "training.epochs must be an integer, got True"),
    ("training.epochs=abc", "training.epochs must be an integer, got 'abc'"),
    ("training.epochs=2.5", "training.epochs must be an integer, got 2.5"),
    ("training.batch_size=0", "training.batch_size must be >= 1, got 0"),
    ("training.batch_size=-5", "training.batch_size must be >= 1, got -5"),
    ("training.optimizer=sgd", "training.optimizer must be one of ['gd', 'momentum', 'adam'], got 'sgd'"),
    ("training.beta1=1", "training.beta1 must be in [0, 1), got 1.0"),
    ("training.beta2=-0.1", "training.beta2 must be in [0, 1), got -0.1"),
    ("training.beta2=.nan", "training.beta2 must be finite, got nan"),
    ("training.epsilon=0", "training.epsilon must be > 0, got 0.0"),
    ("training.min_delta=-0.01", "training.min_delta must be >= 0, got -0.01"),
    ("training.min_delta=.inf", "training.min_delta must be finite, got inf"),
    ("training.eval_every=0", "training.eval_every must be a positive integer or 'auto', got 0"),
    ("training.eval_every=true", "training.eval_every must be a positive integer or 'auto', got True"),
    ("training.patience=0", "training.patience must be >= 1, got 0"),
    ("training.monitor=dev_acc", "training.monitor must be one of ['dev_loss', 'dev_error'], got 'dev_acc'"),
    ("training.dtype=float16", "training.dtype must be one of ['float64', 'float32'], got 'float16'"),
    ("regularization.l2=-0.1", "regularization.l2 must be >= 0, got -0.1"),
    ("regularization.l2=.inf", "regularization.l2 must be finite, got inf"),
    ("regularization.l1=-1", "regularization.l1 must be >= 0, got -1.0"),
    ("regularization.l1=.nan", "regularization.l1 must be finite, got nan"),
    ("regularization.keep_prob=1.5", "regularization.keep_prob must be in (0, 1], got 1.5"),
    ("regularization.keep_prob=0", "regularization.keep_prob must be in (0, 1], got 0"),
    ("regularization.keep_prob=[0.5,2]", "regularization.keep_prob must be in (0, 1], got 2"),
    ("regularization.keep_prob=.nan", "regularization.keep_prob must be finite, got nan"),
    ("regularization.keep_prob=abc", "regularization.keep_prob must be a number in (0, 1] or a list "
                                     "of them, got 'abc'"),
    ("regularization.keep_prob=[0.5]", "regularization.keep_prob must have one value per hidden layer "
                                       "(3 for model.hidden=[80, 50, 30]), got [0.5]"),
    ("model.hidden=[20,0]", "model.hidden[1] must be >= 1, got 0"),
    ("model.init=ones", "model.init must be one of ['zeros', 'random', 'he', 'xavier', 'glorot'], got 'ones'"),
    ("model.activation=gelu", "model.activation must be one of ['relu', 'leaky_relu', 'tanh', 'sigmoid'], got 'gelu'"),
    ("model.init_scale=0", "model.init_scale must be > 0, got 0.0"),
    ("data.name=mnist", "data.name must be one of ['rings', 'noisy_diagonal', 'circles', 'moons', "
                        "'flower', 'spirals', 'blobs', 'digits', 'table'], got 'mnist'"),
    ("data.target={name: mnist}", "data.target.name must be one of ['rings', 'noisy_diagonal', "
                                  "'circles', 'moons', 'flower', 'spirals', 'blobs', 'digits', 'table'], got 'mnist'"),
    ("data.target=autox", "data.target must be one of ['auto'], got 'autox'"),
    ("data.name=table", "data with name table needs path and label, got path=None, label=None"),
    ("data.target={name: table}", "data.target with name table needs path and label, got path=None, label=None"),
    ("data.params.nosie=0.1", "data set 'noisy_diagonal' has no parameter 'nosie' (data.params.nosie); "
                              "valid parameters: n_samples, noise, band, variant"),
    ("data.target={params: {varient: clean}}", "data set 'noisy_diagonal' has no parameter 'varient' "
                                               "(data.target.params.varient); valid parameters: "
                                               "n_samples, noise, band, variant"),
    ("data.feature_scale=[1,0]", "data.feature_scale[1] must be > 0, got 0.0"),
    ("data.train=0.7", "data.train + data.dev + data.test must sum to 1, got 1.1"),
    ("data.dev=1.5", "data.dev must be in (0, 1), got 1.5"),
    ("augment.names=[flip]", "augment.names[0] must be one of ['jitter', 'reflect', 'rotate', 'shift', "
                             "'small_rotate'], got 'flip'"),
    ("augment.copies=true", "augment.copies must be an integer, got True"),
    ("augment.copies=-1", "augment.copies must be >= 0, got -1"),
    ("augment.copies=2", "augment.copies is 2 but augment.names is empty; valid names: jitter, reflect, "
                         "rotate, shift, small_rotate"),
    ("diagnosis.bayes_error=1", "diagnosis.bayes_error must be in [0, 1), got 1.0"),
    ("diagnosis.threshold=1", "diagnosis.threshold must be in (0, 1), got 1.0"),
    ("seed=-1", "seed must be >= 0, got -1"),
    ("search.n_trials=0", "search.n_trials must be >= 1, got 0"),
    ("search.pruner.reduction_factor=1", "search.pruner.reduction_factor must be >= 2, got 1"),
    ("search.sampler.seed=-3", "search.sampler.seed must be >= 0, got -3"),
    ("search.sampler.name=grid", "search.sampler.name must be one of ['tpe', 'random'], got 'grid'"),
    ("search.study=../../x", "search.study must be a name of letters, digits, '.', '_' or '-' "
                             "(it names the file optuna/<study>.journal), got '../../x'"),
    ("search.study=/tmp/x", "search.study must be a name of letters, digits, '.', '_' or '-' "
                            "(it names the file optuna/<study>.journal), got '/tmp/x'"),
    ("evaluate.alias=''", "evaluate.alias must not be empty, got ''"),
]


@pytest.mark.parametrize("override, message", BAD_VALUES)
def test_bad_values_name_key_bound_and_value(override, message):
    with pytest.raises(ValueError) as info:
        load(override)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_unknown_data_set_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"data.name must be one of \[.*'rings'.*\], got 'mnist'"):
        load("data.name=mnist")


@pytest.mark.parametrize("override, key, section, valid", [
    ("model.depth=3", "model.depth", "model", "activation, hidden, init, init_scale"),
    ("regularisation.l2=1", "regularisation", "the config", "augment, data, diagnosis"),
    ("training.lr=0.1", "training.lr", "training", "batch_size, beta1"),
])
def test_unknown_key_names_it_and_lists_valid_keys(override, key, section, valid):
    with pytest.raises(ValueError) as info:
        load(override)
    assert str(info.value).startswith(f"unknown key {key}; valid keys of {section}: {valid}")


@pytest.mark.parametrize("item", ["regularization.l2", "=3", "a b=1"])
def test_malformed_override(item):
    with pytest.raises(ValueError, match="override must look like key=value"):
        parse_override(item)


def test_override_into_a_value_is_refused():
    with pytest.raises(ValueError, match=r"model.init.x: model.init is a value \('he'\), not a section"):
        load("model.init.x=1")


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "presets").glob("*.yaml")))
def test_every_preset_file_validates(name):
    cfg = load(preset=name)
    assert cfg.flat()  # and it differs from the base somewhere
    assert cfg != load()


def test_preset_files_set_what_they_say():
    assert load(preset="rings_init").data.name == "rings"
    assert load(preset="rings_init").data.target is None
    assert load(preset="noisy_diagonal_regularization").regularization.keep_prob == 0.5
    assert load(preset="digits").augment.names == ("shift",)


def test_unknown_preset_lists_known_ones():
    with pytest.raises(ValueError, match=r"preset must be one of \[.*'rings_init'.*\], got 'nope'"):
        load(preset="nope")


def test_layers_base_preset_local_overrides(tmp_path):
    (tmp_path / "presets").mkdir()
    (tmp_path / "local").mkdir()
    (tmp_path / "base.yaml").write_text("seed: 1\nmodel: {hidden: [4], init: he}\nregularization: {l2: 0.1}\n")
    (tmp_path / "presets" / "e.yaml").write_text("seed: 2\nmodel: {hidden: [8, 8]}\n")
    (tmp_path / "local" / "me.yaml").write_text("seed: 3\nregularization: {l2: 0.2}\n")
    cfg = load_config(["regularization.l2=0.3"], conf_dir=tmp_path, preset="e")
    assert cfg.seed == 3                      # local beats preset beats base
    assert cfg.model.hidden == (8, 8)         # lists are replaced, not merged
    assert cfg.model.init == "he"             # sibling keys of a merged section survive
    assert cfg.regularization.l2 == 0.3       # the command line wins


def test_bad_yaml_names_the_file(tmp_path):
    (tmp_path / "base.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'base.yaml'}: not valid YAML")):
        load_config(conf_dir=tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        load_config(conf_dir=tmp_path / "nowhere")


def test_with_overrides_validates_and_copies():
    cfg = load()
    new = cfg.with_overrides({"regularization.l2": 0.5, "model.init": "xavier"})
    assert (new.regularization.l2, new.model.init) == (0.5, "xavier")
    assert cfg.regularization.l2 != 0.5                 # the original is untouched
    with pytest.raises(ValueError, match=r"regularization.keep_prob must be in \(0, 1\], got 1.2"):
        cfg.with_overrides({"regularization.keep_prob": 1.2})


def test_flat_params_and_yaml_round_trip():
    cfg = load("model.hidden=[7,3]", "regularization.keep_prob=[0.5,1]")
    flat = cfg.flat()
    assert flat["model.hidden"] == "[7, 3]"
    assert flat["regularization.keep_prob"] == "[0.5, 1.0]"
    assert flat["training.batch_size"] == "null"
    assert flat["data.target"] == "auto"
    assert all(isinstance(v, str) and len(v) < 500 for v in flat.values())
    assert config_from_yaml(cfg.to_yaml()) == cfg


def test_config_is_frozen():
    cfg = load()
    with pytest.raises(Exception):
        cfg.seed = 5
