"""Fast checks of the fault machinery: the evaluation claim on each storage kind (a real
PostgreSQL for the advisory lock), the preflight checks and the CLI's one-line errors."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pipeline.errors import foreseeable, one_line
from pipeline.commands import preflight
from pipeline.search import storage as S
from pipeline.search.evaluate_lock import ClaimBusy, evaluation_claim, lock_key

ROOT = Path(__file__).resolve().parents[1]


def _held_by_another_process(spec, study, tmp_path) -> subprocess.CompletedProcess:
    """Try the claim from a second real process while this one holds it."""
    code = ("import sys; from pathlib import Path; from pipeline.search.evaluate_lock import "
            "evaluation_claim, ClaimBusy\n"
            f"spec = {spec!r}\n"
            "try:\n"
            f"    with evaluation_claim(spec, {study!r}, Path({str(tmp_path)!r})): print('GOT')\n"
            "except ClaimBusy as e: print('BUSY', e)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c",
                           "from pipeline.search.storage import StorageSpec\n" + code],
                          capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("storage", ["journal", "sqlite"])
def test_the_claim_is_exclusive_across_processes_and_released(tmp_path, storage):
    url = None if storage == "journal" else f"sqlite:///{tmp_path}/o.db"
    spec = S.resolve(url, "s", tmp_path)
    with evaluation_claim(spec, "s", tmp_path) as label:
        assert "lock file" in label
        with pytest.raises(ClaimBusy, match="being evaluated by another process"):
            with evaluation_claim(spec, "s", tmp_path):
                pass
        other = _held_by_another_process(spec, "s", tmp_path)
        assert other.stdout.startswith("BUSY"), other.stderr
        with evaluation_claim(spec, "another-study", tmp_path):  # per study
            pass
    assert _held_by_another_process(spec, "s", tmp_path).stdout.strip() == "GOT"


def test_lock_keys_are_postgres_bigints_and_differ_by_study():
    keys = {lock_key(f"s{i}") for i in range(100)}
    assert len(keys) == 100 and all(-2**63 <= k < 2**63 for k in keys)


@pytest.fixture
def postgres_db():
    """A fresh database per test on the local PostgreSQL (trust auth), dropped afterwards."""
    name = f"nnp_{uuid.uuid4().hex[:10]}"
    made = subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432: {made.stderr.strip()}")
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--force", name],
                   capture_output=True)


@pytest.mark.postgres
def test_the_postgres_claim_is_an_advisory_lock_held_across_processes(tmp_path, postgres_db):
    spec = S.resolve(postgres_db, "s", tmp_path)
    with evaluation_claim(spec, "s", tmp_path) as label:
        assert label.startswith("PostgreSQL advisory lock")
        other = _held_by_another_process(spec, "s", tmp_path)
        assert other.stdout.startswith("BUSY") and "advisory lock" in other.stdout, other.stderr
    assert _held_by_another_process(spec, "s", tmp_path).stdout.strip() == "GOT"
    assert not list(tmp_path.iterdir())  # no lock file: the lock lives in the server


def test_preflight_refuses_unknown_schemes_and_unwritable_paths(tmp_path):
    with pytest.raises(ValueError, match="unknown scheme 'bogus'"):
        preflight.check_tracking("bogus://x")
    (tmp_path / "f").write_text("")
    with pytest.raises(ValueError, match="is not writable"):
        preflight.check_storage_path(str(tmp_path / "f" / "s.journal"))
    with pytest.raises(ValueError, match="is not writable"):
        preflight.check_tracking(f"sqlite:///{tmp_path}/f/m.db")
    preflight.check_storage_path(str(tmp_path / "new" / "dir" / "s.journal"))  # created later
    preflight.check_tracking(f"sqlite:///{tmp_path}/m.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_mlflow_defaults_keep_the_users_values(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    preflight.mlflow_defaults()
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "10"
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"


def test_environment_exceptions_become_one_masked_line_and_bugs_do_not():
    from mlflow.exceptions import MlflowException
    from requests.exceptions import ConnectionError as HTTPError

    err = MlflowException("API request to http://u:secret@h/api failed\nTraceback line 2")
    assert foreseeable(err) and one_line(err) == \
        "MlflowException: API request to http://u:***@h/api failed"
    assert foreseeable(HTTPError("refused")) and foreseeable(PermissionError("x"))
    assert not foreseeable(KeyError("a bug")) and not foreseeable(TypeError("a bug"))
