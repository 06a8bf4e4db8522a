"""The tracking edge: the only package importing mlflow (see docs/tracking.md).

runs.py      configure (URI + experiment), run (honest FINISHED/FAILED/KILLED), ui_links
records.py   MetricBuffer (log_batch), params/tags/metrics helpers, git state, versions, datasets
training.py  log_training: everything a finished training records
model.py     the pyfunc model (served.py, logged as code: weights .npz + network.json)
search_runs.py  the search's experiment, parent run, a child run per trial, pointer run
evaluation.py   the once-only test record, test metrics, registration and alias
reproducible.py what a trial records for reproduce (config, digests, threads)
lessons.py   a lesson's child run per arm and seed
lesson_parent.py  a lesson's own experiment and its parent: verdict, table, kept metrics
ui.py        what the MLflow UI shows first: mode, shared view (columns), descriptions, links
notes.py     the descriptions and short run names (strings only)
readback.py  a logged run read back for reproduce
cache.py     the run cache: a finished identical run's result, found by its key, reused
recovery.py  the owner tag of every run; runs a dead process left RUNNING, ended by the next
             command
"""

import os
import warnings

with warnings.catch_warnings():
    # mlflow imports tqdm.auto, which in a Jupyter kernel without ipywidgets warns "IProgress
    # not found": noise in every notebook that imports the tracking edge (the run cache)
    warnings.filterwarnings("ignore", message="IProgress not found")
    import mlflow  # noqa: F401

from pipeline.redact import redact_logs

# MLflow prints "View run ... at: <tracking URI>/#/..." on stdout whenever a run on a tracking
# server ends: the URI as given, password included, once per trial in a search and past
# --quiet. The commands print their own links (ui_links, masked); set here, in the environment,
# so that worker processes started from this one inherit it too.
os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
redact_logs("mlflow")  # a failed request's log line names its URL
from pipeline.store_fault import drop_store_faults

# "SQLAlchemy database error" and its traceback at every failed statement of a broken store:
# the command that meets it says it in one line (pipeline/store_fault.py)
drop_store_faults("mlflow.store.db.utils")

from pipeline.tracking.notes import run_name
from pipeline.tracking.records import MetricBuffer, git_state, package_versions
from pipeline.tracking.runs import configure, run, tracking_uri, ui_links
from pipeline.tracking.training import final_metrics, log_training

__all__ = ["MetricBuffer", "configure", "final_metrics", "git_state", "log_training",
           "package_versions", "run", "run_name", "tracking_uri", "ui_links"]
