"""Damaged Optuna journals and kept MLflow records, with the real commands on real stores.

A torn last line (a write cut short) is cut, the journal kept in a copy, and the study goes on;
any other unreadable line stops the command with one line naming the file and the line.
A malformed `mlflow-unsent/*.json` is set aside and the command goes on (issue 17, items 3, 8).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

CONF = Path(__file__).resolve().parents[1] / "conf"
TINY = ["data.params={n_samples: 200}", "model.hidden=[20,3]", "training.epochs=60",
        "training.eval_every=5", "training.patience=4", "search.trial_figures=none"]
SEARCH = [*TINY, "search.storage=study.journal", "search.study=tiny"]


def _cli(cwd: Path, command: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m pipeline <command>` in `cwd`, this checkout's code, its own SQLite store."""
    path = os.pathsep.join(filter(None, [str(CONF.parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path,
           "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}"}
    for key in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(key, None)
    quiet = ["--quiet"] if command == "search" else []
    return subprocess.run([sys.executable, "-m", "pipeline", command, *args, *quiet, "--conf-dir",
                           str(CONF)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> Path:
    """A directory holding a 2-trial study (journal) and its MLflow store, made once."""
    work = tmp_path_factory.mktemp("searched")
    done = _cli(work, "search", *SEARCH, "search.n_trials=2")
    assert done.returncode == 0, done.stderr
    return work


@pytest.fixture
def work(searched, tmp_path) -> Path:
    """A private copy of the searched directory (each test damages its own journal)."""
    shutil.copytree(searched, tmp_path / "w")
    return tmp_path / "w"


def _statuses(work: Path) -> list[str]:
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    ids = [e.experiment_id for e in client.search_experiments()]
    return [r.info.status for r in client.search_runs(ids)]


def _trials(work: Path) -> list[TrialState]:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(work / "study.journal")))
    return [t.state for t in optuna.load_study(study_name="tiny", storage=storage).trials]


@pytest.mark.slow
def test_a_torn_last_line_is_cut_kept_in_a_copy_and_the_search_goes_on(work):
    journal = work / "study.journal"
    whole = journal.read_bytes()
    lines = whole.count(b"\n")
    os.truncate(journal, len(whole) - 50)  # as a write cut short by a full disk leaves it
    torn = journal.read_bytes()
    done = _cli(work, "search", *SEARCH, "search.n_trials=1")
    assert done.returncode == 0, done.stderr
    [note] = [line for line in done.stderr.splitlines() if "torn" in line]
    cut = len(whole) - 50 - (whole.rfind(b"\n", 0, len(whole) - 1) + 1)
    assert f"Optuna journal {journal}: line {lines} was torn" in note
    assert f"of {cut} bytes" in note and "the study continues" in note
    [copy] = work.glob("study.journal.torn-*")
    assert copy.read_bytes() == torn and str(copy) in note  # every byte kept
    assert journal.read_bytes().startswith(torn[:len(torn) - cut])
    # the cut record was trial 1's end: trial 1 is failed as left RUNNING, 1 more ran
    states = _trials(work)
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert "RUNNING" not in _statuses(work)
    again = _cli(work, "search", *SEARCH, "search.n_trials=1")  # repaired for good
    assert again.returncode == 0 and "torn" not in again.stderr, again.stderr
    assert _trials(work).count(TrialState.COMPLETE) == 3


def _refused(work: Path, damage) -> tuple[str, bytes]:
    """Damage the journal, run a search; returns its one stderr line and the journal bytes
    before the search (which must leave the journal as it found it)."""
    journal = work / "study.journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(damage(lines)))
    before = journal.read_bytes()
    runs = _statuses(work)
    done = _cli(work, "search", *SEARCH, "search.n_trials=1")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert journal.read_bytes() == before and not list(work.glob("*.torn-*"))
    assert _statuses(work) == runs and "RUNNING" not in runs  # no run was created
    return done.stderr, before


@pytest.mark.slow
def test_a_malformed_middle_line_is_refused_naming_the_file_and_line(work):
    def damage(lines):
        lines[4] = lines[4].replace(b":", b";", 1)
        return lines

    err, _ = _refused(work, damage)
    assert err.startswith(f"error: Optuna journal {work / 'study.journal'}: line 5 is not a "
                          "JSON record (JSONDecodeError: Expecting ':' delimiter"), err
    assert "not dropped" in err


@pytest.mark.slow
def test_an_unknown_op_code_is_refused_naming_the_file_and_line(work):
    record = json.dumps({"op_code": 99, "worker_id": "w", "trial_id": 0}).encode() + b"\n"
    err, before = _refused(work, lambda lines: [*lines[:7], record, *lines[7:]])
    assert err.startswith(f"error: Optuna journal {work / 'study.journal'}: line 8 has "
                          "op_code 99, which Optuna does not know"), err


@pytest.mark.slow
def test_malformed_unsent_records_are_set_aside_and_train_goes_on(tmp_path):
    from pipeline.commands import unsent

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    left = client.create_run(client.create_experiment("lost")).info.run_id  # RUNNING
    unsent.save(left, uri, "ConnectionError", "a: 1\n", [["dev_loss", 0.5, 1000, 5]],
                {"dev_error": 0.1}, 5, workdir=tmp_path)
    kept = tmp_path / unsent.DIR
    (kept / "cut.json").write_text('{"run_id": "abc" "reason": ')
    (kept / "list.json").write_text("[1, 2]")
    done = _cli(tmp_path, "train", *TINY[:-1], "training.epochs=10")
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "not a record" in line]
    assert len(notes) == 2, done.stderr
    # named as the command found them: relative to the directory it runs in
    assert notes[0].startswith("note: mlflow-unsent/cut.json is not a record of unsent MLflow "
                               "writes (JSONDecodeError: Expecting ',' delimiter: line 1")
    assert notes[0].endswith("set aside as mlflow-unsent/cut.json.bad, not replayed")
    assert notes[1] == ("note: mlflow-unsent/list.json is not a record of unsent MLflow writes "
                        "(a JSON list, not an object); set aside as "
                        "mlflow-unsent/list.json.bad, not replayed")
    assert sorted(p.name for p in kept.iterdir()) == sorted([  # a run id sorts anywhere
        f"{left}.replayed.json", "cut.json.bad", "list.json.bad"])
    assert client.get_run(left).info.status == "FAILED"  # the valid record still replayed
    assert client.get_metric_history(left, "dev_loss")[0].value == 0.5
    assert "RUNNING" not in _statuses(tmp_path)


# A write cut short for real: the file-size limit (as a full disk) stops the append part-way.
_FULL = """
import os, resource, sys
import optuna
from pipeline.search import storage as S
optuna.logging.set_verbosity(optuna.logging.WARNING)
spec = S.StorageSpec(None, sys.argv[1])
study = optuna.create_study(study_name="s", storage=S.open_storage(spec))
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(sys.argv[1]) + 100, hard))
try:
    study.set_user_attr("big", "x" * 5000)
except OSError as exc:
    print(exc)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
study.set_user_attr("after", 1)
print(optuna.load_study(study_name="s", storage=S.open_storage(spec)).user_attrs)
"""


def test_a_write_cut_short_is_cut_back_by_its_writer_and_the_error_names_the_journal(tmp_path):
    journal = tmp_path / "s.journal"
    path = os.pathsep.join(filter(None, [str(CONF.parent), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", _FULL, str(journal)], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": path}, timeout=60)
    assert done.returncode == 0, done.stderr
    failed, attrs = done.stdout.splitlines()
    assert failed == (f"[Errno 27] Optuna journal {journal}: writing a record failed (File too "
                      "large); the partial record was cut off, the journal is as before the "
                      "write")
    assert attrs == "{'after': 1}"  # the next append was not glued onto a fragment
    assert journal.read_bytes().endswith(b"\n") and not list(tmp_path.glob("*.torn-*"))


def test_a_record_optuna_cannot_replay_is_one_error_naming_the_file_and_line(tmp_path):
    from pipeline.search import storage as S

    spec = S.StorageSpec(None, str(tmp_path / "s.journal"))
    optuna.create_study(study_name="s", storage=S.open_storage(spec)).set_user_attr("a", 1)
    with open(spec.path, "a") as f:  # valid JSON, known op code, a field missing
        f.write('{"op_code":4,"worker_id":"w"}\n')
    with pytest.raises(ValueError) as info:
        S.open_storage(spec)
    assert str(info.value).startswith(f"Optuna journal {spec.path}: line 3 cannot be replayed "
                                      "(KeyError: 'study_id'); it is not dropped")
