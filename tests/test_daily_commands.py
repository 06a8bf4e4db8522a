"""Issue 18's daily-command surprises, each through the real command and a real SQLite store:
typed predictions, resolved and digested table paths, "did you mean", `--version`, the UI
hint after every recording command, distinct search parents, arm-key overrides refused."""

import hashlib
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlflow
from mlflow.tracking import MlflowClient

from pipeline.cli import main
from pipeline.tracking.store import seed_store

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

@pytest.fixture
def own_sys_path():
    """Loading a pyfunc puts its logged code first on sys.path (MLflow's code_paths) and keeps
    it there: a later spawned lesson worker of this process then imported another `pipeline`.
    Put the path and the `pipeline` modules back after the test."""
    import sys

    path = list(sys.path)
    modules = {k: v for k, v in sys.modules.items() if k == "pipeline" or k.startswith("pipeline.")}
    yield
    sys.path[:] = path
    for name in [k for k in sys.modules if k == "pipeline" or k.startswith("pipeline.")]:
        if name not in modules:
            del sys.modules[name]
    sys.modules.update(modules)


@pytest.mark.parametrize("overrides, kind, labels, signature", [
    (["data.name=noisy_diagonal"], int, {0, 1}, "long"),          # built-in integer codes
    (["data.name=rings"], str, {"inner", "outer"}, "string"),     # names stay strings
])
def test_the_served_model_returns_labels_with_their_own_type(tracking_uri, own_sys_path,
                                                             overrides, kind, labels, signature):
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


# --- 5. the command line a user expects -----------------------------------------------------

def test_version_comes_from_the_package_metadata(capsys):
    from importlib import metadata

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"nn-pipeline {metadata.version('nn-pipeline')}"


def test_help_describes_the_program_not_its_architecture(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "imperative shell" not in out and "NumPy neural network" in out


@pytest.mark.parametrize("override, meant", [
    ("regularisation.l2=3", "did you mean regularization.l2?"),
    ("l2=3", "did you mean regularization.l2? (the MLproject parameter l2 sets it)"),
    ("learning_rate=0.1", "did you mean training.learning_rate? (the MLproject parameter "
                          "learning_rate sets it)"),
    ("training.learning_rat=0.1", "did you mean training.learning_rate?"),
    ("data.lable=y", "did you mean data.label?"),
])
def test_an_unknown_key_gets_a_did_you_mean(tracking_uri, capsys, override, meant):
    assert train(tracking_uri, override) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown key ") and err.count("\n") == 1
    assert err.rstrip("\n").endswith(meant)
    assert runs_of(tracking_uri) == []


def test_a_key_with_nothing_close_gets_no_guess(tracking_uri, capsys):
    assert train(tracking_uri, "model.depth=3") == 2
    assert "did you mean" not in capsys.readouterr().err


def test_the_aliases_are_the_mlproject_main_parameters():
    import re

    import yaml

    from pipeline.config.suggest import MLPROJECT_ALIASES

    main_ep = yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"]["main"]
    pairs = dict((param, key) for key, param in
                 re.findall(r"([a-z0-9_.]+)=\{([a-z0-9_]+)\}", main_ep["command"]))
    assert MLPROJECT_ALIASES == {p: k for p, k in pairs.items() if p != k}


def runs_of(uri: str) -> list:
    # A refused command that never created its SQLite store left no runs; opening the missing
    # file with MlflowClient would only run MLflow's ~60 migrations (1.5-2.5 s a test).
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
        return []
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids) if ids else []


@pytest.mark.parametrize("ui_url, command, base", [
    (None, "", "http://127.0.0.1:5000"),                         # mlflow ui's own default
    ("http://127.0.0.1:5055", " --port 5055", "http://127.0.0.1:5055"),
    ("http://0.0.0.0:8080/", " --host 0.0.0.0 --port 8080", "http://0.0.0.0:8080"),
])
def test_train_prints_the_ui_command_that_serves_its_links(tracking_uri, capsys, ui_url,
                                                           command, base):
    extra = [f"tracking.ui_url={ui_url}"] if ui_url else []
    # the printed links are the subject: no model or figures to log (a third of each train)
    assert train(tracking_uri, *extra, "tracking.log_model=false",
                 "tracking.log_figures=false") == 0
    out = capsys.readouterr().out
    run = only_run(tracking_uri)
    assert f"  UI:    mlflow ui --backend-store-uri {tracking_uri}{command}   then open {base}/#/" \
           f"experiments/{run.info.experiment_id}/runs?" in out
    assert f"this run: {base}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}?" in out
    # completed: said once (the message repeats the epoch count)
    assert "  stop:  completed after 30 epochs\n" in out


def test_links_to_a_tracking_server_point_at_the_server():
    from pipeline.tracking.ui import open_hint, ui_address, ui_command

    uri = "http://alice:secret@10.1.2.3:5005"
    assert ui_address(None, uri) == "http://10.1.2.3:5005"      # the server is the UI, no password
    assert ui_address("http://ui.example:80", uri) == "http://ui.example:80"   # set: it wins
    assert ui_command(None, uri) is None                           # no `mlflow ui` to start
    lines = open_hint(None, "7", "r1", tracking_uri=uri)
    assert lines[0] == "  store: http://alice:***@10.1.2.3:5005"
    assert lines[1] == ("  UI:    http://10.1.2.3:5005/#/experiments/7/runs?workflowType="
                        "machine_learning&viewStateShareKey=nn-pipeline   (the tracking server "
                        "serves the UI)")


def test_an_override_of_a_key_an_arm_sets_is_refused_naming_key_and_arms(tracking_uri, capsys):
    code = main(["experiment", "--conf-dir", CONF, "initialization", "seeds=1",
                 f"tracking.uri={tracking_uri}", "model.init=he"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: override model.init cannot apply: lesson initialization's "
                          "arms set it")
    assert "zeros (model.init=zeros)" in err and "xavier (model.init=xavier)" in err
    assert runs_of(tracking_uri) == []


def test_an_override_inside_a_section_an_arm_sets_is_refused_too():
    from pipeline.lessons import load_lesson, plan

    lesson = load_lesson("augmentation", CONF)
    with pytest.raises(ValueError, match=r"override augment\.params\.sigma cannot apply: .*"
                                         r"jitter \(augment\.params=\{\"sigma\":0\.3\}\)"):
        plan(lesson, seeds=1, overrides=["augment.params.sigma=1"], conf_dir=CONF)
    assert plan(lesson, seeds=1, overrides=["training.epochs=5"], conf_dir=CONF)  # others pass


@pytest.mark.slow
def test_search_parents_of_one_study_have_distinct_names_and_every_command_says_how_to_open(
        tracking_uri, search_cfg, capsys):
    names = []
    for _ in range(3):
        assert main(["search", "--quiet", "--conf-dir", CONF, *search_cfg.args("n_trials=1")]) == 0
        out = capsys.readouterr().out
        assert f"  UI:    mlflow ui --backend-store-uri {tracking_uri}   then open" in out
    client = MlflowClient(tracking_uri)
    search = client.get_experiment_by_name("tiny-search")
    names = sorted(r.info.run_name for r in client.search_runs(
        [search.experiment_id], "tags.stage = 'search'"))
    assert names == ["search-tiny trials 1-1", "search-tiny trials 2-2", "search-tiny trials 3-3"]
    assert main(["evaluate", "--conf-dir", CONF, *search_cfg.args()]) == 0
    out = capsys.readouterr().out
    assert f"  UI:    mlflow ui --backend-store-uri {tracking_uri}   then open" in out


# --- 4. mlflow run: the experiment and a bad -P -------------------------------------------

def project_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")}
    return {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(ROOT)}


def mlflow_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    # the store made first from the template (tests/conftest.py new_store), as a command would
    # make it: `mlflow run` otherwise runs MLflow's ~60 migrations itself (1.6 s of CPU or more)
    seed_store(project_env(tmp_path)["MLFLOW_TRACKING_URI"])
    return subprocess.run(["mlflow", "run", str(ROOT), "--env-manager", "local", *args],
                          cwd=tmp_path, env=project_env(tmp_path), capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_an_undeclared_p_is_explained_and_the_runners_run_says_why(tmp_path):
    done = mlflow_run(tmp_path, "--experiment-name", "nn-pipeline", "-P", "lr=0.1")
    assert done.returncode != 0
    line = ("error: -P lr=0.1 is not a parameter of the MLproject entry point main (MLflow "
            "passes an undeclared -P on as --lr); its parameters: dataset, epochs, init, "
            "keep_prob, l2, learning_rate, seed; did you mean -P learning_rate=...?")
    assert line in done.stderr.splitlines()
    assert "unrecognized arguments" not in done.stderr
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("nn-pipeline").experiment_id])
    assert run.info.status == "FAILED"                        # the runner's; it made it first
    assert run.data.tags["refused"] == line.removeprefix("error: ")
    assert run.data.tags["mlflow.note.content"].startswith("Refused before anything ran: -P lr")


@pytest.mark.slow
def test_a_missing_declared_parameter_is_refused_by_mlflow_before_any_run(tmp_path):
    done = mlflow_run(tmp_path, "-e", "reproduce")
    assert done.returncode != 0 and "No value given for missing parameters: 'run_id'" in done.stderr
    assert runs_of(f"sqlite:///{tmp_path / 'mlflow.db'}") == []


# test_mlflow_run_in_default_says_how_to_name_the_experiment: in tests/test_mlproject.py, on
# that module's `mlflow run` (a run of its own here cost ~12 s of CPU).


# --- 3. notebook 07 writes into the user's store, nothing into the temp dir --------------------
# Checked on tests/test_notebooks.py's own run of notebook 07 (search_used_the_users_store):
# a second kernel run of the notebook here cost ~15 s of CPU.


# --- 6. docs/tables.md: its CSV is made by its own snippet, its commands say what it quotes ---

def test_the_table_doc_commands_build_and_its_quoted_errors_are_what_the_commands_say(
        tracking_uri, tmp_path, capsys):
    import re
    import shlex

    from pipeline import stages
    from pipeline.config import load_config

    doc = (ROOT / "docs" / "tables.md").read_text()
    snippet = re.search(r'python -c "\n(.*?)"', doc, re.S).group(1)
    exec(snippet, {})                                              # writes iris.csv here
    assert pd.read_csv(tmp_path / "iris.csv").shape == (150, 5)
    lines = doc.splitlines()
    checked = 0
    for i, line in enumerate(lines):
        if not line.startswith("$ python -m pipeline train"):
            continue
        args = [a for a in shlex.split(line)[5:] if not a.startswith("--")]
        quoted = lines[i + 1] if lines[i + 1].startswith("error: ") else None
        if quoted is None:
            cfg = load_config(args, conf_dir=CONF)
            assert stages.prepare(cfg).raw_dev.n == 30             # 150 rows: 90 / 30 / 30
        else:
            assert main(["train", "--quiet", "--conf-dir", CONF, f"tracking.uri={tracking_uri}",
                         *args]) == 2
            said = capsys.readouterr().err.strip().replace(str(tmp_path), "/.../iris-demo")
            head = quoted.split("...")[0]                          # up to the doc's elision
            assert said.startswith(head) and said.endswith(quoted.split("...")[-1]), said
        checked += 1
    assert checked == 5
