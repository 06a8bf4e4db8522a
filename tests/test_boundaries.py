"""The numeric core never imports mlflow or optuna (checked in a fresh interpreter)."""

import subprocess
import sys

CORE = ["pipeline.nn", "pipeline.train", "pipeline.train_types", "pipeline.data", "pipeline.metrics",
        "pipeline.diagnosis", "pipeline.plots.data", "pipeline.plots.training",
        "pipeline.stages", "pipeline.config", "pipeline.lessons", "pipeline.lessons.figures",
        "pipeline.nn.footprint", "pipeline.memory_needed"]

SCRIPT = f"""
import importlib, importlib.util, sys
imported = []
for name in {CORE!r}:
    try:
        found = importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:       # parent package missing
        found = False
    if found:
        importlib.import_module(name)
        imported.append(name)
heavy = sorted(m for m in ("mlflow", "optuna") if m in sys.modules)
print(",".join(imported))
print("HEAVY:" + ",".join(heavy))
"""


def test_core_does_not_import_mlflow_or_optuna():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    imported, heavy = proc.stdout.strip().splitlines()
    assert "pipeline.nn" in imported.split(",") and "pipeline.train" in imported.split(",")
    assert heavy == "HEAVY:", f"core imported {heavy[6:]} (modules: {imported})"
