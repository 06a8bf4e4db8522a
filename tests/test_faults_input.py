"""Hostile input through the real commands (issue 17, items 4, 6, 12): YAML alias bombs, deep
nesting and duplicate keys; tables with repeated column names, too big, binary, a directory, a
symlink loop; a non-UTF-8 conf file. Each case: exit 2, the exact one line on stderr, no run in
a real SQLite store whose experiment already exists. The bombs run in a subprocess under a 1 GB
address-space limit and a 20 s timeout: before the bounded loader they expanded to 6-8 GB."""

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[1]
# 9 levels of 9 aliases: 300 bytes of YAML, 9**9 (387 million) leaves once expanded
BOMB = ("{a: &a [x,x,x,x,x,x,x,x,x], " + ", ".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]"
    for i in range(8)) + "}")
EXPANDS = "YAML expands to more than 100000 nodes with its aliases (line 1)"

pytestmark = pytest.mark.xdist_group("test_faults_input")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store whose experiment exists, so "no run created" is a real count."""
    from pipeline.tracking.store import seed_store

    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    seed_store(uri)  # a copy of the session's template store: no migrations here
    MlflowClient(uri).create_experiment("nn-pipeline")
    return uri


@pytest.fixture
def conf(tmp_path, monkeypatch):
    """A copy of the shipped conf dir (conf/local gets the hostile files); cwd is tmp_path."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    (tmp_path / "conf" / "local").mkdir()
    return tmp_path / "conf"


def runs_in(uri):
    client = MlflowClient(uri)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def refused(store, capsys, command, *args, conf=None):
    """Run the command in-process; return its one stderr line after checking exit 2, one
    line and no run."""
    conf_args = ["--conf-dir", str(conf)] if conf else ["--conf-dir", str(ROOT / "conf")]
    code = main([command, "--quiet", *conf_args, *args, f"tracking.uri={store}"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "\0" not in err, err
    assert runs_in(store) == []
    return err.rstrip("\n")


def _limited():
    resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))


def refused_in_subprocess(store, tmp_path, *argv):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "pipeline", *argv, f"tracking.uri={store}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=20,
                          preexec_fn=_limited)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1, done.stderr[-2000:]
    assert runs_in(store) == []
    return done.stderr.rstrip("\n")


# --- YAML ---------------------------------------------------------------------------------

def test_an_alias_bomb_override_is_refused_before_it_expands(store, tmp_path):
    err = refused_in_subprocess(store, tmp_path, "train", "--quiet", "--conf-dir",
                                str(ROOT / "conf"), "augment.copies=0", f"augment.params={BOMB}")
    assert err == f"error: override augment.params: {EXPANDS}"


def test_an_alias_bomb_in_a_conf_file_is_refused(store, conf, tmp_path):
    path = conf / "local" / "bomb.yaml"
    path.write_text(f"augment:\n  copies: 0\n  params: {BOMB}\n")
    err = refused_in_subprocess(store, tmp_path, "train", "--quiet", "--conf-dir", str(conf))
    assert err == (f"error: {path}: YAML expands to more than 100000 nodes with its aliases "
                   "(line 3)")


def test_an_alias_bomb_in_a_lessons_base_is_refused(store, tmp_path):
    lesson = (ROOT / "tests" / "lesson_flat_tanh.yaml").read_text()
    path = tmp_path / "bomb.yaml"
    path.write_text(lesson.replace("base:\n", f"base:\n  augment.params: {BOMB}\n", 1))
    err = refused_in_subprocess(store, tmp_path, "experiment", "--quiet", "--conf-dir",
                                str(ROOT / "conf"), str(path), "seeds=1")
    assert err == f"error: {path}: YAML expands to more than 100000 nodes with its aliases (line 10)"


def test_an_alias_to_its_own_node_is_refused(store, capsys):
    err = refused(store, capsys, "train", "augment.params={a: &x [*x]}")
    assert err == ("error: override augment.params: YAML alias *x on line 1 refers to a node "
                   "that contains it")


def test_more_than_100_aliases_are_refused(store, capsys):
    aliases = ", ".join(["*a"] * 101)
    err = refused(store, capsys, "train", "training.epochs=5", "augment.copies=0",
                  f"augment.params={{k: [&a 1, {aliases}]}}")
    assert err == "error: override augment.params: more than 100 YAML aliases (*a on line 1)"


def test_a_document_over_a_megabyte_is_refused_by_its_size(store, capsys):
    value = "[" + ",".join(["0"] * 500_001) + "]"
    err = refused(store, capsys, "train", "training.epochs=5", "augment.copies=0",
                  f"augment.params={{k: {value}}}")
    assert err == (f"error: override augment.params: YAML document of {len(value) + 5} bytes "
                   "is larger than the limit of 1000000 bytes")


def test_deep_nesting_is_one_line_not_a_recursion_traceback(store, capsys):
    err = refused(store, capsys, "train", "model.hidden=" + "[" * 3000 + "]" * 3000)
    assert err == "error: override model.hidden: YAML nested deeper than 64 levels (line 1)"


def test_a_duplicate_section_in_a_conf_file_is_named(store, conf, capsys):
    path = conf / "local" / "dup.yaml"
    path.write_text("training:\n  epochs: 5\nmodel:\n  hidden: [3]\ntraining:\n  epochs: 7\n")
    err = refused(store, capsys, "train", conf=conf)
    assert err == f"error: {path}: duplicate YAML key 'training' on line 5 (first on line 1)"


def test_a_duplicate_key_in_an_override_is_named(store, capsys):
    err = refused(store, capsys, "train", "data.params={n_samples: 200, n_samples: 300}")
    assert err == ("error: override data.params: duplicate YAML key 'n_samples' on line 1 "
                   "(first on line 1)")


def test_a_duplicate_key_in_a_lesson_is_named(store, tmp_path, capsys):
    path = tmp_path / "dup.yaml"
    lesson = (ROOT / "tests" / "lesson_flat_tanh.yaml").read_text()
    path.write_text(lesson.replace("  model.activation: tanh\n",
                                   "  model.activation: tanh\n  model.activation: relu\n", 1))
    err = refused(store, capsys, "experiment", str(path), "seeds=1")
    assert err == f"error: {path}: duplicate YAML key 'model.activation' on line 14 (first on line 13)"


def test_a_duplicate_key_in_a_search_space_is_named(store, tmp_path, capsys):
    path = tmp_path / "space.yaml"
    path.write_text("regularization.l2: {type: float, low: 0.0, high: 1.0}\n"
                    "regularization.l2: {type: float, low: 0.0, high: 2.0}\n")
    err = refused(store, capsys, "search", f"search.space={path}",
                  f"search.storage={tmp_path / 'study.journal'}", "search.n_trials=1")
    assert err == f"error: {path}: duplicate YAML key 'regularization.l2' on line 2 (first on line 1)"
    assert not (tmp_path / "study.journal").exists()  # no study either


def test_a_non_utf8_conf_file_is_named(store, conf, capsys):
    path = conf / "local" / "latin1.yaml"
    path.write_bytes("training:\n  epochs: 5  # r\xe9glage\n".encode("latin-1"))
    err = refused(store, capsys, "train", conf=conf)
    assert err == f"error: config file {path} is not UTF-8 text (byte 0xe9 at offset 26)"


@pytest.mark.parametrize("kind", ["directory", "symlink loop"])
def test_a_conf_directory_or_symlink_loop_is_named(store, conf, capsys, kind):
    path = conf / "local" / "odd.yaml"
    if kind == "directory":
        path.mkdir()
        expected = "is a directory, not a file"
    else:
        path.symlink_to(path.name)
        expected = "is a symlink loop"
    assert refused(store, capsys, "train", conf=conf) == f"error: config file {path} {expected}"


# --- tables -------------------------------------------------------------------------------

def _table(tmp_path, header: str) -> Path:
    path = tmp_path / "t.csv"
    rows = [f"{i % 7},{i % 2},{i % 2}" for i in range(40)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def train_on(store, capsys, path, label="y"):
    return refused(store, capsys, "train", "data.name=table", f"data.path={path}",
                   f"data.label={label}", "data.target=null", "training.epochs=5")


@pytest.mark.parametrize("header, repeated", [("a,y,y", "'y'"), ("a,a,y", "'a'")])
def test_a_repeated_csv_column_is_refused_naming_it(store, tmp_path, capsys, header, repeated):
    path = _table(tmp_path, header)
    assert train_on(store, capsys, path) == (f"error: data file {path} has duplicate column "
                                             f"names: {repeated} (rename them so each column "
                                             "is named once)")


def test_a_repeated_parquet_column_is_refused_naming_it(store, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    y = pa.array([i % 2 for i in range(40)])
    pq.write_table(pa.Table.from_arrays([pa.array(range(40)), y, y], names=["a", "y", "y"]), path)
    assert train_on(store, capsys, path) == (f"error: data file {path} has duplicate column "
                                             "names: 'y' (rename them so each column is named "
                                             "once)")


def too_large(path, limit: int) -> str:
    """The one line a table over the size limit gets (its size read, nothing else)."""
    return (f"error: data file {path} is {path.stat().st_size} bytes, larger than the limit of "
            f"{limit} bytes (NN_PIPELINE_MAX_TABLE_MB)")


def test_a_2gb_table_is_refused_by_its_size_without_reading_it(store, tmp_path, capsys):
    path = tmp_path / "big.csv"
    with open(path, "wb") as fh:
        fh.truncate(2 * 2**30)  # sparse: no disk, no time; before it was read whole (207 s)
    assert path.stat().st_size == 2147483648
    assert train_on(store, capsys, path) == too_large(path, 536870912)


def test_the_table_size_limit_is_configurable(store, tmp_path, capsys, monkeypatch):
    path = _table(tmp_path, "a,b,y")
    monkeypatch.setenv("NN_PIPELINE_MAX_TABLE_MB", str(100 / 2**20))  # 100 bytes
    assert train_on(store, capsys, path) == too_large(path, 100)


def test_a_binary_csv_is_refused_without_nul_bytes_in_the_message(store, tmp_path, capsys):
    path = tmp_path / "zeros.csv"
    with open(path, "wb") as fh:
        fh.truncate(1 << 20)
    assert train_on(store, capsys, path) == (f"error: data file {path} is binary (a NUL byte "
                                             "at offset 0), not CSV text")


@pytest.mark.parametrize("kind, expected", [("directory", "is a directory, not a file"),
                                            ("symlink loop", "is a symlink loop"),
                                            ("dangling", "is a symlink to gone.csv, which does not exist")])
def test_a_table_path_that_is_not_a_file_says_what_it_is(store, tmp_path, capsys, kind, expected):
    path = tmp_path / "t.csv"
    if kind == "directory":
        path.mkdir()
    else:
        path.symlink_to(path.name if kind == "symlink loop" else "gone.csv")
    assert train_on(store, capsys, path) == f"error: data file {path} {expected}"
