"""Secrets never printed nor recorded (issue 17, item 1).

A password reaches the pipeline in three forms: userinfo in the tracking URI or a storage URL
(`http://alice:pw@host`), a `?password=` query parameter of a storage URL (libpq and SQLAlchemy
take it), and a libpq keyword string (`host=h password=pw`). Before: MLflow's own "View run ...
at: http://alice:pw@..." lines printed the tracking URI's password on stdout for every run
ended (`train`, each search trial, each lesson run), past `--quiet`, and a `?password=` was not
masked anywhere (params, tags, config.yaml, the study's base_config, the search's printed
storage label). The end-to-end tests run the real commands as subprocesses against a real
`mlflow server` (the session's, shared) and a real PostgreSQL study.
"""

from __future__ import annotations

import base64
import logging
import zlib
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.redact import redact
from servers import ON_SHARED_SERVER, TINY, cli

CONF = str(Path(__file__).resolve().parents[1] / "conf")
PW, PG_PW = "S3cr3tPW", "PgS3cret"   # the tracking server's and the study database's


@pytest.mark.parametrize("text, shown", [
    ("http://alice:S3cr3tPW@127.0.0.1:5511/#/experiments/1",
     "http://alice:***@127.0.0.1:5511/#/experiments/1"),
    ("postgresql://u:p@ss@db/x", "postgresql://u:***@db/x"),   # an unencoded @: all masked
    ("postgresql://postgres@127.0.0.1/db?password=PgS3cret",
     "postgresql://postgres@127.0.0.1/db?password=***"),
    ("postgresql://u@h/db?sslmode=disable&PASSWORD=a%26b&application_name=x",
     "postgresql://u@h/db?sslmode=disable&PASSWORD=***&application_name=x"),
    ("mysql://u@h/db?db_Password=x", "mysql://u@h/db?db_Password=***"),
    ("host=127.0.0.1 dbname=test user=postgres password=PgS3cret port=5432",
     "host=127.0.0.1 dbname=test user=postgres password=*** port=5432"),
    ("host=h password='p w \\' x' port=1", "host=h password=*** port=1"),
    ("sslpassword = k3y token=t0k api_key=a1", "sslpassword = *** token=*** api_key=***"),
    ("'postgresql://u@h/db?password=pw' quoted", "'postgresql://u@h/db?password=***' quoted"),
    ("db?password=pw: unreachable (password=a,b)", "db?password=***: unreachable (password=***)"),
    # no secret: as is
    ("postgresql://postgres@127.0.0.1:5432/db", "postgresql://postgres@127.0.0.1:5432/db"),
    ("training.max_tokens=3 cwd=/tmp sqlite:////tmp/x.db", "training.max_tokens=3 cwd=/tmp "
                                                          "sqlite:////tmp/x.db"),
])
def test_every_credential_form_is_masked(text, shown):
    assert redact(text) == shown
    assert redact(shown) == shown                # idempotent: a masked value stays as it is


def test_log_lines_and_their_tracebacks_are_masked(capsys):
    """MLflow's failed-request lines name the URL; Optuna's failed-trial lines quote the error."""
    from pipeline.redact import redact_logs

    logger = logging.getLogger("nnp-test-secrets")
    logger.addHandler(logging.StreamHandler())
    logger.propagate = False
    redact_logs("nnp-test-secrets")
    try:
        raise ConnectionError(f"API request to http://alice:{PW}@127.0.0.1:1/api failed")
    except ConnectionError:
        logger.exception("trial 3 failed: %s", f"postgresql://u@h/db?password={PG_PW}")
    err = capsys.readouterr().err
    assert "password=***" in err and "alice:***@" in err and "ConnectionError" in err
    assert PW not in err and PG_PW not in err


def _unpacked(value: str) -> str:
    if value.startswith("zlib+base64:"):   # a trial's config tag (pipeline/tracking/reproducible)
        return zlib.decompress(base64.b64decode(value.removeprefix("zlib+base64:"))).decode()
    return value


def _recorded(client: MlflowClient, tmp_path: Path, *experiments: str) -> list[str]:
    """Every param, tag (unpacked) and config.yaml of every run in `experiments`."""
    ids = [client.get_experiment_by_name(name).experiment_id for name in experiments]
    texts = []
    for run in client.search_runs(ids, max_results=1000):
        texts += [*run.data.params.values(), *map(_unpacked, run.data.tags.values())]
        if "config.yaml" in {a.path for a in client.list_artifacts(run.info.run_id)}:
            texts.append(Path(client.download_artifacts(run.info.run_id, "config.yaml",
                                                        str(tmp_path))).read_text())
    assert len(texts) > 50, "nothing recorded: the test would prove nothing"
    return texts


def _assert_clean(result, what: str) -> None:
    assert result.returncode == 0, result.stderr[-2000:]
    shown = result.stdout + result.stderr
    assert PW not in shown and PG_PW not in shown, f"{what} printed a secret:\n{shown[-3000:]}"
    assert "View run" not in shown                   # MLflow's own link line, not ours


@ON_SHARED_SERVER
@pytest.mark.slow
@pytest.mark.postgres
def test_train_search_experiment_print_and_record_no_password(tmp_path, tracking_server,
                                                             pg_database):
    """Tracking server URI with userinfo, study storage with ?password= (trust auth accepts
    any), through train, a 2-trial search and a 1-seed lesson: nothing printed or recorded
    holds either password; the study's attributes neither."""
    import optuna

    uri = tracking_server.replace("http://", f"http://alice:{PW}@")
    storage = f"{pg_database}?password={PG_PW}"
    base = [*TINY, "tracking.experiment=secrets", f"search.storage={storage}",
            "--conf-dir", CONF]
    train = cli(tmp_path, uri, "train", "--quiet", *base)
    _assert_clean(train, "train")
    assert "store: http://alice:***@127.0.0.1:" in train.stdout   # masked, still says where
    search = cli(tmp_path, uri, "search", "--quiet", "study=secrets", "target_trials=2",
                 "workers=1", *base)
    _assert_clean(search, "search")
    assert f"{pg_database}?password=***" in search.stdout
    lesson = cli(tmp_path, uri, "experiment", "--quiet", "--conf-dir", CONF,
                 "gradient_checking", "seeds=1", "training.epochs=5")
    _assert_clean(lesson, "experiment")

    client = MlflowClient(tracking_server)
    recorded = _recorded(client, tmp_path, "secrets", "secrets-search",
                         "nn-pipeline-lesson-gradient_checking")
    assert not [t for t in recorded if PW in t or PG_PW in t]
    assert any("?password=***" in t for t in recorded)           # the param, masked
    study = optuna.load_study(study_name="secrets", storage=pg_database)
    attrs = [study.user_attrs, *(t.user_attrs for t in study.trials)]
    assert len(study.trials) == 2 and "base_config" in study.user_attrs
    assert not [a for a in attrs if PW in repr(a) or PG_PW in repr(a)]


def _python(tmp_path: Path, code: str):
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(Path(CONF).parent), MLFLOW_DISABLE_TELEMETRY="true")
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args, where", [
    ([f"tracking.uri=postgresql+psycopg2://postgres@127.0.0.1:1/db?password={PG_PW}"],
     "tracking.uri"),
    pytest.param(["tracking.uri=sqlite:///mlflow.db",
                  f"search.storage=postgresql+psycopg2://postgres@127.0.0.1:1/db?password={PG_PW}"],
                 "search.storage", marks=pytest.mark.slow),   # ~8 s: Optuna's own retries
])
def test_a_store_that_cannot_be_reached_is_named_without_its_password(tmp_path, args, where):
    """The one-line error names the store (masked): a real `search` whose tracking store or
    study storage is a PostgreSQL URL on a closed port."""
    result = _python(tmp_path, "from pipeline.cli import main; raise SystemExit(main(["
                     + ", ".join(map(repr, ["search", "--quiet", "--conf-dir", CONF, *args]))
                     + "], prog='python -m pipeline'))")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith("error: ") and where in result.stderr
    assert "password=***" in result.stderr and PG_PW not in result.stdout + result.stderr


def test_an_unforeseen_error_prints_its_traceback_without_the_password(tmp_path):
    """An exception nobody foresaw still prints its traceback (exit 1), with the URI masked."""
    result = _python(tmp_path, f"""
import pipeline.cli as cli
class Command:
    add_arguments = staticmethod(lambda parser: None)
    def run(args):
        raise RuntimeError("request to http://alice:{PW}@127.0.0.1:1/api/2.0 failed")
cli._command_module = lambda name: Command
raise SystemExit(cli.main(["train"]))
""")
    assert result.returncode == 1 and "Traceback" in result.stderr
    assert "RuntimeError: request to http://alice:***@127.0.0.1:1/api/2.0" in result.stderr
    assert PW not in result.stderr
