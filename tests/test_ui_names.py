"""What the MLflow UI shows first, as plain values: run names, metric names, the shared view."""

from pathlib import Path

from pipeline.config import load_config
from pipeline.tracking import notes, ui
from pipeline.tracking.records import metric_name

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_a_run_name_carries_the_knobs():
    cfg = load_config(["regularization.l2=3", "regularization.keep_prob=0.5",
                       "model.hidden=[20,3]", "model.init=xavier", "seed=4"], conf_dir=CONF)
    assert notes.run_name(cfg) == "noisy_diagonal xavier l2=3 kp=0.5 lr=0.01 h=20x3 s4"


def test_a_trial_name_carries_its_proposals_by_their_last_key():
    name = notes.trial_name(3, {"regularization.l2": 0.17234, "model.init": "he"})
    assert name == "trial-3 l2=0.172 init=he"
    assert notes.final_test_name("demo", 3, {"model.init": "he"}) == "final-test-demo trial-3 init=he"


def test_history_keys_get_the_section_that_orders_the_run_page():
    assert [metric_name(k) for k in ("dev_loss", "train_objective", "grad_norm_W1",
                                     "act_std_2", "objective")] == [
        "curves/dev_loss", "curves/train_objective", "gradients/norm_W1", "hidden/act_std_2",
        "objective"]


def test_the_shared_view_names_columns_as_the_ui_does():
    view = ui.view_state()
    assert view["selectedColumns"][:2] == ["metrics.`final/dev_accuracy`",
                                           "metrics.`final/train_accuracy`"]
    assert {f"params.`{k}`" for k in ui.KNOBS} <= set(view["selectedColumns"])
    # widths only apply to columns listed in columnOrder (the UI maps over that list)
    assert set(view["columnWidths"]) == set(view["columnOrder"])
    assert "metrics.`objective`" in ui.view_state(search=True)["selectedColumns"]
