"""Passwords in URLs are masked wherever a URL is shown or recorded."""

import pytest

from pipeline.redact import redact


@pytest.mark.parametrize("text, shown", [
    ("postgresql://optuna:s3cr3t@127.0.0.1:5432/test", "postgresql://optuna:***@127.0.0.1:5432/test"),
    ("postgresql+psycopg2://u:p%40ss@db/x", "postgresql+psycopg2://u:***@db/x"),
    ("search.storage: mysql://root:pw@h/db\ntracking.uri: http://a:b@srv:5000",
     "search.storage: mysql://root:***@h/db\ntracking.uri: http://a:***@srv:5000"),
    ("postgresql://user@host/db", "postgresql://user@host/db"),          # no password: as is
    ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ("http://127.0.0.1:5000/#/experiments/1", "http://127.0.0.1:5000/#/experiments/1"),
])
def test_redact_masks_only_the_password(text, shown):
    assert redact(text) == shown


def test_config_params_and_storage_label_never_show_the_password():
    from pathlib import Path

    from pipeline.config import load_config
    from pipeline.search.storage import resolve

    url = "postgresql://optuna:s3cr3t@127.0.0.1:5432/test"
    cfg = load_config([f"search.storage={url}", f"tracking.uri={url}"],
                      conf_dir=Path(__file__).resolve().parents[1] / "conf")
    flat = cfg.flat()
    assert flat["search.storage"] == flat["tracking.uri"] == "postgresql://optuna:***@127.0.0.1:5432/test"
    assert cfg.search.storage == url                       # the config itself still connects
    spec = resolve(url, "s", Path("."))
    assert spec.url == url and "s3cr3t" not in spec.label


def test_a_logged_run_keeps_no_password_of_the_storage_url(tmp_path, monkeypatch):
    """params, tags and config.yaml of a real run with a password in search.storage."""
    from pathlib import Path

    from mlflow.tracking import MlflowClient

    from pipeline.cli import main

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = main(["train", "--quiet", "--conf-dir", str(Path(__file__).resolve().parents[1] / "conf"),
                 f"tracking.uri={uri}", "training.epochs=20", "tracking.log_model=false",
                 "tracking.log_figures=false", "search.storage=postgresql://u:s3cr3t@db/x"])
    assert code == 0
    client = MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.data.params["search.storage"] == "postgresql://u:***@db/x"
    config = (Path(client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path)))
              .read_text())
    assert "storage: postgresql://u:***@db/x\n" in config
    everything = [*run.data.params.values(), *run.data.tags.values(), config]
    assert not any("s3cr3t" in text for text in everything)
