"""Champion/challenger rules of the registry, through the real `evaluate` command and a real
SQLite store, read back with MlflowClient: no champion, better, worse, another data set,
another test split, another input signature.

The searches are the costly part, so four tiny studies are searched once per module into one
journal and one MLflow store; each test evaluates in its own copy of both (the once-only
record lives in them), in the order its case needs.
"""

import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pipeline import stages
from pipeline.cli import main
from pipeline.config import load_config
from pipeline.promotion import Contender, Task, decide, task_of
from pipeline.search.space import load_space
from pipeline.search.sweep import run_search

CONF = Path(__file__).resolve().parents[1] / "conf"
TINY = ["data.params={n_samples: 200}", "model.hidden=[20,3]", "training.eval_every=5",
        "training.patience=4", "search.n_trials=2", "search.pruner.name=none",
        "search.trial_figures=none"]
# strong and weak see the same data with the same seed, so the same sealed test split; weak
# trains 5 epochs at a tiny rate. reseeded is the strong study on another split of the same
# data set; table is another data set (three other features).
STUDIES = {"strong": ["training.epochs=60"],
           "weak": ["training.epochs=5", "training.learning_rate=0.0001"],
           "reseeded": ["training.epochs=60", "seed=1"],
           "table": ["training.epochs=60", "data.name=table", "data.label=label"]}
NO_GATE = "evaluate.gate.threshold=1.0"  # every model passes: the rules under test decide


def _args(root: Path, study: str) -> list[str]:
    extra = [f"data.path={root / 'points.csv'}"] if study == "table" else []
    sized = [a for a in TINY if not (study == "table" and a.startswith("data.params"))]
    return [*sized, *STUDIES[study], *extra, f"search.storage={root / 'studies.journal'}",
            f"search.study={study}"]


def _write_table(path: Path) -> None:
    """300 rows, 3 features, a linear rule: a data set whose input columns differ."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 3))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["label"] = (X @ np.array([1.0, -1.0, 0.5]) > 0).astype(int)
    frame.to_csv(path, index=False)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """The four studies searched into one journal and one store under a module directory."""
    import mlflow

    root = tmp_path_factory.mktemp("registry_studies")
    _write_table(root / "points.csv")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # MLflow's artifacts go to ./mlruns of the working directory
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        for study in STUDIES:
            cfg = load_config(_args(root, study), conf_dir=CONF)
            space, text = load_space(cfg.search.space, CONF)
            run_search(cfg, space, text, progress=False, out=io.StringIO())
    return root


@pytest.fixture
def store(searched, tmp_path, monkeypatch):
    """This test's copy of the studies and the store; returns (evaluate, client, model name)."""
    import mlflow

    for name in ("studies.journal", "mlflow.db", "points.csv"):
        shutil.copy(searched / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)

    def evaluate(study: str, *extra: str) -> int:
        return main(["evaluate", *_args(tmp_path, study), NO_GATE, *extra,
                     "--conf-dir", str(CONF)])

    def model(study: str) -> str:
        return task_of(stages.prepare(load_config(_args(tmp_path, study), conf_dir=CONF))
                       ).model_name("nn-pipeline")

    return evaluate, MlflowClient(uri), model


def _aliases(client, model: str) -> dict[str, str]:
    return {a: str(v) for a, v in client.get_registered_model(model).aliases.items()}


def _alias(client, model: str, alias: str) -> str | None:
    return _aliases(client, model).get(alias)


def _only_run_of(client, study: str):
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                f"tags.stage = 'final_test' and tags.`optuna.study_name` = "
                                f"'{study}'")
    return run


@pytest.mark.slow
def test_no_champion_yet_the_first_version_takes_both_aliases(store, capsys):
    evaluate, client, model = store
    assert evaluate("strong") == 0
    name = model("strong")
    version = client.get_model_version(name, "1")
    assert (_alias(client, name, "champion"), _alias(client, name, "challenger")) == ("1", "1")
    assert (version.tags["decision"], version.tags["reason"]) == ("promoted", "no champion yet")
    assert version.tags["champion_version"] == version.tags["champion_test_error"] == "none"
    run = _only_run_of(client, "strong")
    assert float(version.tags["challenger_test_error"]) == run.data.metrics["test_error"]
    assert version.tags["test_digest"] == run.data.tags["test_digest"]
    registered = client.get_registered_model(name)
    task = task_of(stages.prepare(load_config(_args(Path.cwd(), "strong"), conf_dir=CONF)))
    assert registered.tags["task.dataset"] == "noisy_diagonal"
    assert registered.tags["task.digest"] == version.tags["task.digest"] == task.digest
    assert name == f"nn-pipeline-noisy_diagonal-{task.digest[:8]}"
    out = capsys.readouterr().out
    assert f"registry {name} version 1: promoted, takes aliases 'challenger' and 'champion' " \
           "(no champion yet)" in out
    assert f"serve: models:/{name}@champion is version 1" in out


@pytest.mark.slow
def test_a_better_challenger_on_the_same_test_split_becomes_champion(store, capsys):
    evaluate, client, model = store
    assert evaluate("weak") == 0 and evaluate("strong") == 0
    name = model("strong")
    assert model("weak") == name  # same data set, same task
    weak, strong = _only_run_of(client, "weak"), _only_run_of(client, "strong")
    assert weak.data.tags["test_digest"] == strong.data.tags["test_digest"]
    assert strong.data.metrics["test_error"] < weak.data.metrics["test_error"]  # the case
    version = client.get_model_version(name, "2")
    assert version.run_id == strong.info.run_id and version.tags["decision"] == "promoted"
    assert (_alias(client, name, "champion"), _alias(client, name, "challenger")) == ("2", "2")
    assert float(version.tags["champion_test_error"]) == weak.data.metrics["test_error"]
    assert float(version.tags["challenger_test_error"]) == strong.data.metrics["test_error"]
    assert (version.tags["champion_version"], version.tags["champion_test_digest"]) == \
        ("1", weak.data.tags["test_digest"])
    assert version.tags["reason"] == (
        f"test error {strong.data.metrics['test_error']:.4f} < champion version 1's "
        f"{weak.data.metrics['test_error']:.4f} - margin 0 on test split "
        f"{strong.data.tags['test_digest']}")
    assert "version 2: promoted, takes aliases 'challenger' and 'champion' (test error" in \
        capsys.readouterr().out


@pytest.mark.slow
def test_a_worse_challenger_stays_challenger(store, capsys):
    evaluate, client, model = store
    assert evaluate("strong") == 0 and evaluate("weak") == 0
    name = model("strong")
    weak, strong = _only_run_of(client, "weak"), _only_run_of(client, "strong")
    assert weak.data.metrics["test_error"] > strong.data.metrics["test_error"]  # the case
    version = client.get_model_version(name, "2")
    assert version.run_id == weak.info.run_id and version.tags["decision"] == "not promoted"
    assert (_alias(client, name, "champion"), _alias(client, name, "challenger")) == ("1", "2")
    assert version.tags["reason"].startswith(
        f"test error {weak.data.metrics['test_error']:.4f} not below champion version 1's "
        f"{strong.data.metrics['test_error']:.4f}")
    assert float(version.tags["champion_test_error"]) == strong.data.metrics["test_error"]
    out = capsys.readouterr().out
    assert f"registry {name} version 2: not promoted, takes alias 'challenger' (test error" in out
    assert f"serve: models:/{name}@champion is version 1" in out


@pytest.mark.slow
def test_another_data_set_gets_its_own_registered_model(store):
    evaluate, client, model = store
    assert evaluate("strong") == 0 and evaluate("table") == 0
    ours, theirs = model("strong"), model("table")
    assert theirs != ours and theirs.startswith("nn-pipeline-points-")
    assert [str(v.version) for v in client.search_model_versions(f"name = '{ours}'")] == ["1"]
    assert _alias(client, ours, "champion") == "1"  # untouched by the other data set
    assert _alias(client, theirs, "champion") == "1"
    tags = client.get_registered_model(theirs).tags
    assert (tags["task.dataset"], tags["task.features"], tags["task.classes"]) == \
        ("points", '["a", "b", "c"]', '["0", "1"]')
    assert client.get_model_version(theirs, "1").tags["reason"] == "no champion yet"


@pytest.mark.slow
def test_another_test_split_leaves_the_champion_and_says_so(store, capsys):
    evaluate, client, model = store
    assert evaluate("strong") == 0 and evaluate("reseeded") == 0
    name = model("strong")
    assert model("reseeded") == name  # same task, another split of it
    strong, reseeded = _only_run_of(client, "strong"), _only_run_of(client, "reseeded")
    first, second = strong.data.tags["test_digest"], reseeded.data.tags["test_digest"]
    assert first != second
    version = client.get_model_version(name, "2")
    assert version.tags["decision"] == "not promoted"
    assert version.tags["reason"] == (f"test split differs from champion version 1's (digest "
                                      f"{first} vs {second}): no comparable evidence, "
                                      "champion unchanged")
    assert (_alias(client, name, "champion"), _alias(client, name, "challenger")) == ("1", "2")
    assert "test split differs from champion version 1's" in capsys.readouterr().out


@pytest.mark.slow
def test_a_version_with_another_input_signature_takes_no_alias(store, capsys):
    """A model registered by hand under this task's name (here the table model, 3 columns)
    holds the champion alias: a noisy_diagonal model (2 columns) must not take it, nor
    'challenger', whatever its test error."""
    evaluate, client, model = store
    assert evaluate("table") == 0
    name, foreign = model("strong"), client.get_model_version(model("table"), "1")
    client.create_registered_model(name)
    client.create_model_version(name, foreign.source, run_id=foreign.run_id)
    client.set_registered_model_alias(name, "champion", "1")
    capsys.readouterr()
    assert evaluate("strong") == 0
    version = client.get_model_version(name, "2")
    assert (version.tags["decision"], version.tags["reason"]) == (
        "no alias", "input signature differs from version 1's (holds 'champion'): no alias "
                    "taken")
    assert _aliases(client, name) == {"champion": "1"}
    assert "version 2: no alias (input signature differs" in capsys.readouterr().out


# The rule itself on hand-made evidence (fast): ties, the margin, a foreign task, the gate.
def _v(version: str, error: float | None, digest: str | None = "t1", task: str | None = "k",
       signature: str | None = "s") -> Contender:
    return Contender(version, error, digest, task, signature)


def test_a_tie_keeps_the_incumbent_and_the_margin_is_strict():
    champion = _v("1", 0.10)
    holders = [("champion", champion)]
    tie = decide(_v("2", 0.10), champion, holders, gate=None, margin=0.0)
    assert (tie.promote, tie.take_aliases, tie.word) == (False, True, "not promoted")
    assert decide(_v("2", 0.0999), champion, holders, gate=None, margin=0.0).promote
    assert not decide(_v("2", 0.05), champion, holders, gate=None, margin=0.05).promote
    assert decide(_v("2", 0.0499), champion, holders, gate=None, margin=0.05).promote


def test_a_failed_gate_or_a_foreign_task_never_displaces_the_champion():
    champion = _v("1", 0.30)
    holders = [("champion", champion)]
    gated = decide(_v("2", 0.0), champion, holders, gate="dev_error=0.3 vs threshold 0.2",
                   margin=0.0)
    assert (gated.word, gated.reason) == ("not promoted",
                                          "dev gate failed (dev_error=0.3 vs threshold 0.2)")
    foreign = decide(_v("2", 0.0, task="other"), champion, holders, gate=None, margin=0.0)
    assert not foreign.promote and "serves another task (task digest k vs other)" in \
        foreign.reason
    unknown = decide(_v("2", 0.0), _v("1", None, None, None), [("champion", _v("1", None))],
                     gate=None, margin=0.0)
    assert not unknown.promote  # a version registered by hand: its evidence is unknown
    assert unknown.reason.startswith("test split differs from champion version 1's (digest "
                                     "unknown vs t1)")
    unread = decide(_v("2", 0.0), None, [("challenger", _v("1", 0.1, signature=None))],
                    gate=None, margin=0.0)
    assert (unread.word, unread.reason) == ("no alias", "input signature cannot be compared "
                                            "with version 1's (holds 'challenger'): no alias "
                                            "taken")


def test_the_task_is_named_by_data_set_features_and_classes():
    a = Task("iris", ("x", "y"), ("0", "1"))
    assert a.model_name("nn-pipeline") == f"nn-pipeline-iris-{a.digest[:8]}"
    assert len({a.digest, Task("iris", ("y", "x"), ("0", "1")).digest,
                Task("iris", ("x", "y"), ("0", "1", "2")).digest,
                Task("wine", ("x", "y"), ("0", "1")).digest}) == 4
    assert Task("my data:v2", (), ()).model_name("p").startswith("p-my_data_v2-")


def test_the_rules_are_core_code_without_mlflow_or_optuna():
    code = ("import sys, pipeline.promotion; "
            "print([m for m in ('mlflow', 'optuna') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
