"""The config edge is the one place bounds live: registries are the core's own, TrainSettings is
the config's sections field by field, and a config error imports nothing heavy."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from pipeline import stages
from pipeline.config import load_config
from pipeline.config import sections as S
from pipeline.data import AUGMENTATIONS, DATASETS
from pipeline.nn import ACTIVATIONS, INITIALIZERS, OPTIMIZERS
from pipeline.train import TrainSettings

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def test_names_are_exactly_the_core_registries():
    # fail closed: a name the core does not have is refused, and every name it has is accepted
    assert get_args(S.DatasetName) == (*DATASETS, "table")
    assert get_args(S.AugmentationName) == tuple(AUGMENTATIONS)
    assert get_args(S.Activation) == tuple(ACTIVATIONS)
    assert get_args(S.Initializer) == tuple(INITIALIZERS)
    assert get_args(S.Optimizer) == tuple(OPTIMIZERS)


def test_settings_are_the_sections_field_by_field():
    cfg = load_config(["training.learning_rate=0.3", "training.epochs=700", "training.batch_size=32",
                       "training.optimizer=momentum", "training.beta1=0.8", "training.beta2=0.9",
                       "training.epsilon=1e-6", "training.eval_every=auto", "training.patience=4",
                       "training.min_delta=0.01", "training.monitor=dev_loss",
                       "training.dtype=float32", "regularization.l2=0.7", "regularization.l1=0.2",
                       "regularization.keep_prob=[0.5,0.6,0.7]"], conf_dir=CONF)
    got = dataclasses.asdict(stages.settings(cfg))
    want = {**dict(cfg.training), **dict(cfg.regularization), "eval_every": 700 // 200}
    assert set(got) <= set(want)       # every TrainSettings field has a config key of that name
    assert got == {k: want[k] for k in got}
    assert got["keep_prob"] == (0.5, 0.6, 0.7) and got["eval_every"] == 3


def test_an_explicit_cadence_is_kept():
    cfg = load_config(["training.eval_every=7"], conf_dir=CONF)
    assert stages.settings(cfg).eval_every == 7
    assert isinstance(stages.settings(cfg), TrainSettings)


@pytest.mark.parametrize("override", ["regularization.keep_prob=1.5", "data.name=mnist"])
def test_a_config_error_imports_no_heavy_library(tmp_path, override):
    # the data registry's sklearn/pandas imports stay inside the data sets that need them
    code = ("import sys\nfrom pipeline.cli import main\n"
            f"rc = main(['train', {override!r}, '--conf-dir', {str(CONF)!r}])\n"
            "print(rc, sorted(m for m in ('sklearn', 'pandas', 'mlflow', 'optuna', 'scipy') "
            "if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "2 []", out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: ")


@pytest.mark.parametrize("overrides, check", [
    (["data.name=table", "data.path=t.csv", "data.label=y"],
     lambda c: c.data.path == os.path.abspath("t.csv")),       # resolved where it was typed
    (["data.target={name: table, path: d.csv, label: y}"],
     lambda c: c.data.target.path == os.path.abspath("d.csv")),
    (["data.target={params: {variant: clean}}"], lambda c: c.data.target.params == {"variant": "clean"}),
    (["data.name=rings", "data.params={n_samples: 300, noise: 0.1}"],
     lambda c: c.data.params["n_samples"] == 300),
    (["augment.names=[jitter]", "augment.copies=2"], lambda c: c.augment.copies == 2),
    (["model.hidden=[]", "regularization.keep_prob=0.5"], lambda c: c.model.hidden == ()),
])
def test_the_cross_field_rules_let_valid_combinations_through(overrides, check):
    # the rules that refuse (test_config.BAD_VALUES) must not refuse their valid neighbours
    assert check(load_config(overrides, conf_dir=CONF))
