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
