"""What a lesson's parent run shows, without a store: the kept metrics (the claim's means, no
NaN), the description's order and its fallback when the table would pass MLflow's 8000
characters, the MLflow table's columns, and the lesson experiment's name."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.lessons import parse_lesson, run_lesson
from pipeline.tracking import lesson_parent as LP

CONF = Path(__file__).resolve().parents[1] / "conf"
# one xdist worker builds the module fixture once (--dist loadgroup in pyproject)
pytestmark = pytest.mark.xdist_group("test_lesson_tracking_view")


@pytest.fixture(scope="module")
def result():
    # a fixed lesson file (the first vanishing_exploding lesson: 5 inits of a 20-layer tanh
    # network, one with an all-zero gradient), so these tests do not follow the shipped lesson
    text = (Path(__file__).parent / "lesson_flat_tanh.yaml").read_text()
    return run_lesson(parse_lesson(text, "vanishing_exploding"), seeds=2, conf_dir=CONF,
                      figures=False, overrides=["training.epochs=1"])


def test_the_parent_keeps_each_checks_metric_mean_for_the_arms_it_names(result):
    kept = LP.kept_metrics(result, seconds=1.5)
    assert set(kept) == {"he.log10_grad_spread_mean", "xavier.log10_grad_spread_mean",
                         "random_small.grad_norm_first_mean", "random_large.log10_grad_ratio_mean",
                         "he.log10_grad_ratio_mean", "zeros.zero_gradient_mean",
                         "lesson.held", "lesson.checks_met", "lesson.seconds"}
    assert kept["random_large.log10_grad_ratio_mean"] == result.table.loc[
        "random_large", "log10_grad_ratio_mean"]
    assert kept["lesson.checks_met"] == 6 and kept["lesson.seconds"] == 1.5
    assert len(kept) < len(result.table.columns)          # 9, against 754 before


def test_an_undefined_mean_is_left_out_of_the_metrics(result):
    table = result.table.copy()
    table.loc["he", "log10_grad_spread_mean"] = np.nan     # as the zeros arm's are
    kept = LP.kept_metrics(replace(result, table=table), seconds=1.0)
    assert "he.log10_grad_spread_mean" not in kept and "xavier.log10_grad_spread_mean" in kept


def test_the_description_leads_with_the_verdict_then_figure_table_checks(result):
    note = LP.parent_note(result, "7", "abc")
    verdict, figure, table = note.split("\n\n")[:3]
    assert verdict == f"**{result.verdict.line}**"
    assert figure.startswith("Comparison figure: [lesson/comparison.png](#/experiments/7/runs/"
                             "abc/artifacts/lesson/comparison.png?workflowType=machine_learning)")
    assert table.startswith("| arm | log10_grad_spread |")
    assert "| zeros | n/a: zero gradient |" in note and "nan" not in note.replace("n/a", "")
    assert note.index("Checks:") > note.index("| xavier |")
    assert note.rstrip().endswith("- met: zeros zero_gradient mean 1 >= 1")


def test_a_table_too_long_for_a_description_stays_in_the_artifacts(result):
    huge = "# t\n\n" + "\n".join(f"| arm{i} | {'x' * 80} |" for i in range(120)) + "\n\nverdict: x"
    note = LP.parent_note(replace(result, texts={"lesson/table.md": huge}), "7", "abc")
    assert len(note) <= LP.NOTE_LIMIT and note.startswith(f"**{result.verdict.line}**")
    assert "| arm0 |" not in note and "*Artifacts* → `lesson/table.md`" in note
    assert "- met: zeros zero_gradient mean 1 >= 1" in note


def test_the_mlflow_table_has_the_arms_then_every_mean_before_the_spreads(result):
    frame = LP.table_frame(result)
    assert list(frame["arm"]) == list(result.table.index)
    cols = list(frame.columns)
    assert cols[:3] == ["arm", "n_seeds", "log10_grad_spread_mean"]
    assert max(cols.index(c) for c in cols if c.endswith("_mean")) < min(
        cols.index(c) for c in cols if c.endswith("_std"))
    assert frame.set_index("arm")["grad_norm_first_mean"].equals(
        result.table["grad_norm_first_mean"])


def test_each_lesson_has_its_own_experiment_named_after_the_training_one():
    assert LP.experiment_name("nn-pipeline", "initialization") == \
        "nn-pipeline-lesson-initialization"
