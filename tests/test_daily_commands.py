"""Issue 18's daily-command surprises, each through the real command and a real SQLite store:
typed predictions, resolved and digested table paths, "did you mean", `--version`, the UI
hint after every recording command, distinct search parents, arm-key overrides refused."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlflow
from mlflow.tracking import MlflowClient

from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")


def write_table(path: Path, rows: int = 80) -> Path:
    """A CSV of two features and an integer label (1 above the diagonal), like a user's."""
    rng = np.random.default_rng(7)
    X = rng.uniform(0, 1, (rows, 2))
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": (X[:, 0] > X[:, 1]).astype(int)})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def only_run(uri: str):
    client = MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return run


def train(uri: str, *overrides: str) -> int:
    return main(["train", "--quiet", "--conf-dir", CONF, f"tracking.uri={uri}",
                 "training.epochs=30", *overrides])


# --- 1. predictions come back with the labels' own type ------------------------------------

@pytest.mark.parametrize("overrides, kind, labels, signature", [
    (["data.name=noisy_diagonal"], int, {0, 1}, "long"),          # built-in integer codes
    (["data.name=rings"], str, {"inner", "outer"}, "string"),     # names stay strings
])
def test_the_served_model_returns_labels_with_their_own_type(tracking_uri, overrides, kind,
                                                             labels, signature):
    assert train(tracking_uri, *overrides) == 0
    run = only_run(tracking_uri)
    uri = f"runs:/{run.info.run_id}/model"
    model = mlflow.pyfunc.load_model(uri)
    frame = pd.DataFrame(np.random.default_rng(0).uniform(-7, 7, (40, 2)), columns=["x1", "x2"])
    got = model.predict(frame)
    assert set(got) <= labels and all(type(v) is kind for v in got.tolist())
    (output,) = mlflow.models.get_model_info(uri).signature.outputs.inputs
    assert output.type.name == signature


# --- 2. a relative table path is logged resolved, with the file's digest --------------------

def test_a_relative_data_path_reproduces_from_another_directory(tracking_uri, tmp_path,
                                                                 monkeypatch, capsys):
    table = write_table(tmp_path / "data" / "points.csv")
    monkeypatch.chdir(table.parent)
    assert train(tracking_uri, "data.name=table", "data.path=points.csv", "data.label=y",
                 "data.target=null") == 0
    run = only_run(tracking_uri)
    assert run.data.params["data.path"] == str(table)            # absolute, as resolved
    assert run.data.tags["data.path.digest"] == hashlib.sha256(table.read_bytes()).hexdigest()[:16]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["reproduce", run.info.run_id]) == 0
    out = capsys.readouterr().out
    assert f"file digest data.path ({table})  match" in out
    assert f"run {run.info.run_id} reproduces: all" in out
    with table.open("a") as f:                                     # the same path, edited
        f.write("0.5,0.25,1\n")
    assert main(["reproduce", run.info.run_id]) == 1
    verdict = capsys.readouterr().out.splitlines()[-1]
    assert verdict.startswith(f"run {run.info.run_id} does NOT reproduce")
    assert f"file digest data.path ({table})" in verdict
