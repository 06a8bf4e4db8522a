"""The MLflow UI as a user sees it: a store made by the pipeline, `mlflow server`, headless Chromium.

One slow test (store + server + browser: about a minute here); the code is in
tests/ui_browser.py, which also makes the README's screenshots (`python tests/ui_browser.py`).
"""

import os
import shutil
from pathlib import Path

import pytest

import ui_browser as U

# One xdist worker runs all six (--dist loadgroup): the module fixture makes the store, starts a
# server and a browser, and would otherwise do so again on each worker that gets one of them.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_ui_browser")]


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    # a missing browser skips on a developer's machine, never in CI (.ci/run installs it)
    if not Path(U.CHROMIUM).exists() and not shutil.which("chromium") and not os.environ.get("CI"):
        pytest.skip("no /usr/bin/chromium (apt-get install -y chromium; .ci/run does it)")
    root = tmp_path_factory.mktemp("ui")
    info = U.make_store(root)
    with U.mlflow_server(root) as base:
        return info, U.look(base, info)


def test_the_printed_link_opens_the_runs_in_model_training_mode(seen):
    info, seen = seen
    text = seen["runs"]
    for run in info["train_runs"]:                      # the training runs and the final test
        assert run["name"] in text
    # the search's parent and trials live in their own experiment: only these rows are here
    assert f"{len(info['train_runs'])} matching runs" in text and "search-demo" not in text
    assert U.TRAINING_ONLY in text and not any(label in text for label in U.GENAI_ONLY)
    assert "nn-pipeline: a neural network written in NumPy" in text  # the description


def test_the_shared_view_shows_the_knobs_and_headline_metrics_as_columns(seen):
    columns = seen[1]["runs_columns"]
    assert "metrics.`final/dev_accuracy`" in columns and "metrics.`test_accuracy`" in columns
    assert "params.`data.name`" in columns and "params.`regularization.l2`" in columns
    assert "attributes.`Source`" not in columns         # the default columns make room


def test_without_the_mode_in_the_link_a_fresh_browser_shows_genai(seen):
    # What MLflow 3.17 does with the experiment tag alone: the mode is browser state, which is
    # why every printed link carries workflowType=machine_learning.
    text = seen[1]["plain"]
    assert "Training runs" in text and all(label in text for label in U.GENAI_ONLY)


def test_the_search_has_its_own_experiment_with_its_parent_run(seen):
    info, seen = seen
    parent = next(r["name"] for r in info["search_runs"] if r["stage"] == "search")
    assert parent in seen["search"] and "Optuna study demo" in seen["search"]
    assert sum(r["stage"] == "search_trial" for r in info["search_runs"]) == 3


def test_the_learning_curves_come_first_on_the_run_page(seen):
    sections = seen[1]["chart_sections"]
    assert sections[:4] == ["curves", "final", "gradients", "hidden"]


def test_the_boundary_figure_is_served_as_png(seen):
    status, head = seen[1]["artifact"]
    assert status == 200 and head == b"\x89PNG\r\n\x1a\n"
