"""Notebooks are communication, but they must keep running against the package they import.

Each code cell is executed in order in one namespace (no Jupyter needed), with EPOCHS set by
the test; the assertions check the numbers the story claims.
"""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_notebook(path: Path, overrides: dict) -> dict:
    cells = json.loads(path.read_text())["cells"]
    namespace: dict = {"__name__": "__notebook__"}
    for i, cell in enumerate(c for c in cells if c["cell_type"] == "code"):
        exec(compile("".join(cell["source"]), f"{path.name}[{i}]", "exec"), namespace)
        if i == 0:
            namespace.update(overrides)
    return namespace


def test_initialization_notebook_tells_the_true_story(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    ns = run_notebook(ROOT / "notebooks/01-initialization-on-rings.ipynb", {"EPOCHS": 3000})
    runs = ns["runs"]
    acc = {init: runs[init][2].metrics["dev_accuracy"] for init in runs}
    first_loss = {init: runs[init][2].fit.history["train_loss"][0] for init in runs}
    # He learns the rings; zeros cannot break symmetry and stays near a constant guess.
    assert acc["he"] > 0.9
    assert acc["zeros"] < 0.75
    # A x10 normal init starts with a far larger loss than He (saturated sigmoid output).
    assert first_loss["random"] > 5 * first_loss["he"]
    assert set(ns["figures"]) == {"zeros", "random", "he"}
